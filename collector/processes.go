// The processes collector: the top processes by memory, mailbox and reductions.
package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	processesTopN = kingpin.Flag("collector.processes.top-n",
		"How many processes to rank by memory, mailbox and reductions (1-1000).").Default("10").Int()
	processesWindow = kingpin.Flag("collector.processes.window",
		"Least time between a process's two reductions reads for the reductions ranking; the scan itself counts toward it.").Default("20ms").Duration()
)

func init() {
	register("processes", true, TierSlow, func() Collector { return processesCollector{} })
}

var (
	processMemoryDesc = prometheus.NewDesc(namespace+"_process_memory_bytes",
		"Memory of the process at this rank among the largest by memory. process is its registered name, proc_lib label or initial call, never a pid. Up to one slow tier old.",
		[]string{"rank", "process"}, nil)
	processQueueDesc = prometheus.NewDesc(namespace+"_process_message_queue_length",
		"Message queue length of the process at this rank among the longest mailboxes. Up to one slow tier old.",
		[]string{"rank", "process"}, nil)
	processReductionsDesc = prometheus.NewDesc(namespace+"_process_reductions_per_second",
		"Reductions per second of the process at this rank among the busiest, measured between two reads at least --collector.processes.window apart. Up to one slow tier old.",
		[]string{"rank", "process"}, nil)
)

// processRankings is the probe's top_processes answer.
type processRankings struct {
	memory, messageQueue, reductions []rankedEntry
	window                           time.Duration
}

type processesCollector struct{}

// ValidateProcessesFlags checks the collector's flags before anything starts.
func ValidateProcessesFlags() error {
	if *processesTopN < 1 || *processesTopN > maxTopN {
		return fmt.Errorf("--collector.processes.top-n must be within 1-%d, got %d", maxTopN, *processesTopN)
	}
	if *processesWindow < 0 || *processesWindow > 10*time.Second {
		return fmt.Errorf("--collector.processes.window must be within 0-10s, got %s", *processesWindow)
	}
	return nil
}

func (processesCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	reply, err := node.ProbeCall(ctx, "top_processes", *processesTopN, int(processesWindow.Milliseconds()))
	if err != nil {
		return probeError("ranking processes", err)
	}
	r, err := parseProcessRankings(reply, *processesTopN)
	if err != nil {
		return fmt.Errorf("ranking processes: %w", err)
	}
	for i, e := range r.memory {
		ch <- prometheus.MustNewConstMetric(processMemoryDesc, prometheus.GaugeValue, e.values[0], rankLabel(i), e.name)
	}
	for i, e := range r.messageQueue {
		ch <- prometheus.MustNewConstMetric(processQueueDesc, prometheus.GaugeValue, e.values[0], rankLabel(i), e.name)
	}
	if r.window > 0 {
		for i, e := range r.reductions {
			ch <- prometheus.MustNewConstMetric(processReductionsDesc, prometheus.GaugeValue,
				e.values[0]/r.window.Seconds(), rankLabel(i), e.name)
		}
	}
	return nil
}

// parseProcessRankings decodes {ok, #{memory, message_queue_len, reductions,
// window_us, processes}}.
func parseProcessRankings(t etf.Term, topN int) (processRankings, error) {
	var r processRankings
	body, err := okReply(t)
	if err != nil {
		return r, err
	}
	m, err := erlnode.Map(body)
	if err != nil {
		return r, err
	}
	for _, f := range []struct {
		key string
		dst *[]rankedEntry
	}{
		{"memory", &r.memory},
		{"message_queue_len", &r.messageQueue},
		{"reductions", &r.reductions},
	} {
		v, err := erlnode.Field(m, f.key)
		if err != nil {
			return r, err
		}
		if *f.dst, err = parseRanking(v, 1, topN); err != nil {
			return r, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	v, err := erlnode.Field(m, "window_us")
	if err != nil {
		return r, err
	}
	us, err := erlnode.NonNegative(v)
	if err != nil {
		return r, fmt.Errorf("window_us: %w", err)
	}
	r.window = time.Duration(us) * time.Microsecond
	return r, nil
}
