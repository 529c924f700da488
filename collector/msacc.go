// The msacc collector: where the emulator's threads spend their time.

package collector

import (
	"context"
	"fmt"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
)

// Opt-in: with microstate accounting on, a reductions-heavy workload lost
// 4.5-12.7% of its throughput in make bench (BENCHMARKS.md), above the 1%
// a default may cost the node.
func init() {
	register("msacc", false, TierSlow, func() Collector { return msaccCollector{} }).
		needs(func() erlnode.SessionOptions { return erlnode.SessionOptions{MicrostateAccounting: true} })
}

var msaccDesc = prometheus.NewDesc(namespace+"_msacc_seconds_total",
	"Time the emulator's threads of a type spent in a state, summed over the threads of that type (microstate accounting; the gc state is the honest source of GC time). Counts from when the exporter's session switched accounting on. Up to one slow tier old.",
	[]string{"thread_type", "state"}, nil)

type msaccCollector struct{}

func (msaccCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	// Microstate accounting is switched on by the probe session, which
	// switches it off again when the last exporter leaves.
	if err := node.EnsureSession(ctx); err != nil {
		return probeError("starting the probe session", err)
	}
	reply, err := statistics(ctx, node, "microstate_accounting")
	if err != nil {
		return err
	}
	freq, err := node.Call(ctx, "erlang", "convert_time_unit", 1, etf.Atom("second"), etf.Atom("perf_counter"))
	if err != nil {
		return fmt.Errorf("reading the perf counter frequency: %w", err)
	}
	ticks, err := erlnode.NonNegative(freq)
	if err != nil || ticks == 0 {
		return fmt.Errorf("reading the perf counter frequency: unexpected %v", freq)
	}
	sums, err := parseMSAcc(reply)
	if err != nil {
		return fmt.Errorf("statistics(microstate_accounting): %w", err)
	}
	for key, v := range sums {
		ch <- prometheus.MustNewConstMetric(msaccDesc, prometheus.CounterValue, v/ticks, key.threadType, key.state)
	}
	return nil
}

type msaccKey struct{ threadType, state string }

// maxMSAccLabels bounds the distinct thread types, and the distinct
// states, of a microstate accounting reading.
const maxMSAccLabels = 32

// parseMSAcc sums [#{type := T, id := I, counters := #{State := Ticks}}]
// over the threads of each type.
func parseMSAcc(t etf.Term) (map[msaccKey]float64, error) {
	if t == etf.Atom("undefined") {
		return nil, fmt.Errorf("microstate accounting is off on the node")
	}
	threads, err := erlnode.List(t)
	if err != nil {
		return nil, err
	}
	sums := map[msaccKey]float64{}
	types, states := map[string]bool{}, map[string]bool{}
	for i, th := range threads {
		m, err := erlnode.Map(th)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", i, err)
		}
		typ, err := erlnode.Field(m, "type")
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", i, err)
		}
		threadType, err := erlnode.Atom(typ)
		if err != nil {
			return nil, fmt.Errorf("thread %d type: %w", i, err)
		}
		c, err := erlnode.Field(m, "counters")
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", i, err)
		}
		counters, err := erlnode.Map(c)
		if err != nil {
			return nil, fmt.Errorf("thread %d counters: %w", i, err)
		}
		for state, v := range counters {
			n, err := erlnode.NonNegative(v)
			if err != nil {
				return nil, fmt.Errorf("thread %d state %s: %w", i, state, err)
			}
			sums[msaccKey{threadType, state}] += n
			states[state] = true
		}
		types[threadType] = true
		// The labels come from the node: ERTS has about ten thread types
		// and, with extra states, twenty states; far more is no ERTS.
		if len(types) > maxMSAccLabels || len(states) > maxMSAccLabels {
			return nil, fmt.Errorf("more than %d thread types or states", maxMSAccLabels)
		}
	}
	return sums, nil
}
