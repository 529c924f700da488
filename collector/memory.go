// The memory collector: erlang:memory/0 as a partition of the node's total.

package collector

import (
	"context"
	"fmt"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
)

func init() { register("memory", true, TierFast, func() Collector { return memoryCollector{} }) }

var memoryDesc = prometheus.NewDesc(namespace+"_memory_bytes",
	"Memory allocated by the emulator, by kind (erlang:memory/0). The kinds partition the total: sum them for erlang:memory(total). Up to one fast tier old.",
	[]string{"kind"}, nil)

var memoryUsedDesc = prometheus.NewDesc(namespace+"_memory_used_bytes",
	"The part of beam_memory_bytes of the same kind that is in use (erlang:memory/0: processes_used, atom_used); "+
		"the rest is allocated and free. Up to one fast tier old.",
	[]string{"kind"}, nil)

// memoryUsedKinds are the kinds erlang:memory/0 also reports as used.
var memoryUsedKinds = []string{"processes", "atom"}

// memoryKinds are the parts of erlang:memory(total) that do not overlap;
// "other" is what system memory holds beyond atoms, binaries, code and ETS.
var memoryKinds = []string{"processes", "atom", "binary", "code", "ets"}

type memoryCollector struct{}

func (memoryCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	reply, err := node.Call(ctx, "erlang", "memory")
	if err != nil {
		return fmt.Errorf("reading memory: %w", err)
	}
	kinds, err := parseMemory(reply)
	if err != nil {
		return fmt.Errorf("reading memory: %w", err)
	}
	used, err := parseMemoryUsed(reply)
	if err != nil {
		return fmt.Errorf("reading memory: %w", err)
	}
	for _, k := range append(memoryKinds, "other") {
		ch <- prometheus.MustNewConstMetric(memoryDesc, prometheus.GaugeValue, kinds[k], k)
	}
	for _, k := range memoryUsedKinds {
		ch <- prometheus.MustNewConstMetric(memoryUsedDesc, prometheus.GaugeValue, used[k], k)
	}
	return nil
}

// parseMemoryUsed reads processes_used and atom_used from the same reply.
// It does not insist that used stays within its kind: OTP does not promise
// the figures are read together, and beam_memory_bytes must not fail with it.
func parseMemoryUsed(reply etf.Term) (map[string]float64, error) {
	props, err := erlnode.Proplist(reply)
	if err != nil {
		return nil, err
	}
	used := make(map[string]float64, len(memoryUsedKinds))
	for _, k := range memoryUsedKinds {
		v, err := erlnode.Field(props, k+"_used")
		if err != nil {
			return nil, err
		}
		if used[k], err = erlnode.NonNegative(v); err != nil {
			return nil, fmt.Errorf("%s_used: %w", k, err)
		}
	}
	return used, nil
}

// parseMemory turns erlang:memory/0's proplist into the partition.
func parseMemory(reply etf.Term) (map[string]float64, error) {
	props, err := erlnode.Proplist(reply)
	if err != nil {
		return nil, err
	}
	read := func(key string) (float64, error) {
		v, err := erlnode.Field(props, key)
		if err != nil {
			return 0, err
		}
		return erlnode.NonNegative(v)
	}
	total, err := read("total")
	if err != nil {
		return nil, err
	}
	kinds := make(map[string]float64, len(memoryKinds)+1)
	rest := total
	for _, k := range memoryKinds {
		if kinds[k], err = read(k); err != nil {
			return nil, err
		}
		rest -= kinds[k]
	}
	if rest < 0 {
		return nil, fmt.Errorf("the kinds add up to more than the total (%.0f bytes over)", -rest)
	}
	kinds["other"] = rest
	return kinds, nil
}
