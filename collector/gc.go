// The gc collector: garbage collections and the memory they reclaimed.

package collector

import (
	"context"
	"fmt"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
)

func init() { register("gc", true, TierSlow, func() Collector { return gcCollector{} }) }

var (
	gcRunsDesc = prometheus.NewDesc(namespace+"_gc_runs_total",
		"Garbage collections since the node started (statistics(garbage_collection)). Up to one slow tier old.", nil, nil)
	gcReclaimedDesc = prometheus.NewDesc(namespace+"_gc_reclaimed_bytes_total",
		"Bytes reclaimed by garbage collection since the node started (statistics(garbage_collection)). Up to one slow tier old.", nil, nil)
)

type gcCollector struct{}

func (gcCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	stats, err := statistics(ctx, node, "garbage_collection")
	if err != nil {
		return err
	}
	wordsize, err := systemInfoNumber(ctx, node, "wordsize")
	if err != nil {
		return err
	}
	if wordsize != 4 && wordsize != 8 {
		return fmt.Errorf("system_info(wordsize): %v bytes, where 4 or 8 was expected", wordsize)
	}
	runs, words, err := parseGC(stats)
	if err != nil {
		return fmt.Errorf("statistics(garbage_collection): %w", err)
	}
	ch <- prometheus.MustNewConstMetric(gcRunsDesc, prometheus.CounterValue, runs)
	ch <- prometheus.MustNewConstMetric(gcReclaimedDesc, prometheus.CounterValue, words*wordsize)
	return nil
}

// parseGC decodes {NumberOfGCs, WordsReclaimed, 0}.
func parseGC(t etf.Term) (runs, words float64, err error) {
	tup, err := erlnode.Tuple(t, 3)
	if err != nil {
		return 0, 0, err
	}
	if runs, err = erlnode.NonNegative(tup[0]); err != nil {
		return 0, 0, err
	}
	if words, err = erlnode.NonNegative(tup[1]); err != nil {
		return 0, 0, err
	}
	return runs, words, nil
}
