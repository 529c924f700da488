// The runtime collector: context switches, I/O bytes and CPU time.

package collector

import (
	"context"
	"fmt"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
)

func init() { register("runtime", true, TierSlow, func() Collector { return runtimeCollector{} }) }

var (
	contextSwitchesDesc = prometheus.NewDesc(namespace+"_context_switches_total",
		"Process context switches since the node started (statistics(context_switches)). Up to one slow tier old.", nil, nil)
	ioReceivedDesc = prometheus.NewDesc(namespace+"_io_received_bytes_total",
		"Bytes received through ports since the node started (statistics(io)). Up to one slow tier old.", nil, nil)
	ioSentDesc = prometheus.NewDesc(namespace+"_io_sent_bytes_total",
		"Bytes sent through ports since the node started (statistics(io)). Up to one slow tier old.", nil, nil)
	cpuDesc = prometheus.NewDesc(namespace+"_cpu_seconds_total",
		"CPU time of all the emulator's threads since the node started (statistics(runtime)). Up to one slow tier old.", nil, nil)
)

type runtimeCollector struct{}

func (runtimeCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	switches, err := statistics(ctx, node, "context_switches")
	if err != nil {
		return err
	}
	n, _, err := pair(switches)
	if err != nil {
		return fmt.Errorf("statistics(context_switches): %w", err)
	}
	io, err := statistics(ctx, node, "io")
	if err != nil {
		return err
	}
	in, out, err := parseIO(io)
	if err != nil {
		return fmt.Errorf("statistics(io): %w", err)
	}
	runtime, err := statistics(ctx, node, "runtime")
	if err != nil {
		return err
	}
	cpuMillis, _, err := pair(runtime)
	if err != nil {
		return fmt.Errorf("statistics(runtime): %w", err)
	}
	ch <- prometheus.MustNewConstMetric(contextSwitchesDesc, prometheus.CounterValue, n)
	ch <- prometheus.MustNewConstMetric(ioReceivedDesc, prometheus.CounterValue, in)
	ch <- prometheus.MustNewConstMetric(ioSentDesc, prometheus.CounterValue, out)
	ch <- prometheus.MustNewConstMetric(cpuDesc, prometheus.CounterValue, cpuMillis/1000)
	return nil
}

// parseIO decodes {{input, In}, {output, Out}}.
func parseIO(t etf.Term) (in, out float64, err error) {
	tup, err := erlnode.Tuple(t, 2)
	if err != nil {
		return 0, 0, err
	}
	read := func(t etf.Term, tag string) (float64, error) {
		p, err := erlnode.Tuple(t, 2)
		if err != nil {
			return 0, err
		}
		if a, _ := erlnode.Atom(p[0]); a != tag {
			return 0, fmt.Errorf("expected {%s, N}", tag)
		}
		return erlnode.NonNegative(p[1])
	}
	if in, err = read(tup[0], "input"); err != nil {
		return 0, 0, err
	}
	if out, err = read(tup[1], "output"); err != nil {
		return 0, 0, err
	}
	return in, out, nil
}
