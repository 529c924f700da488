// The ets collector: the largest ETS tables by memory.

package collector

import (
	"context"
	"fmt"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

var etsTopN = kingpin.Flag("collector.ets.top-n", "How many ETS tables to report, largest by memory first (1-1000).").Default("10").Int()

func init() {
	register("ets", true, TierSlow, func() Collector { return etsCollector{} }).validatedBy(validateETSFlags)
}

var (
	etsMemoryDesc = prometheus.NewDesc(namespace+"_ets_table_memory_bytes",
		"Memory of an ETS table among the largest. table is a named table's name, or an unnamed table's owner; tables sharing a label are summed. Up to one slow tier old.",
		[]string{"table"}, nil)
	etsObjectsDesc = prometheus.NewDesc(namespace+"_ets_table_objects",
		"Objects in an ETS table among the largest by memory (same tables as beam_ets_table_memory_bytes). Up to one slow tier old.",
		[]string{"table"}, nil)
)

// validateETSFlags checks the collector's flags before anything starts.
func validateETSFlags() error {
	if *etsTopN < 1 || *etsTopN > maxTopN {
		return fmt.Errorf("--collector.ets.top-n must be within 1-%d, got %d", maxTopN, *etsTopN)
	}
	return nil
}

type etsCollector struct{}

func (etsCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	reply, err := node.ProbeCall(ctx, "ets_tables", *etsTopN)
	if err != nil {
		return probeError("ranking ETS tables", err)
	}
	body, err := okReply(reply)
	if err != nil {
		return fmt.Errorf("ranking ETS tables: %w", err)
	}
	tables, err := parseRanking(body, 2, *etsTopN)
	if err != nil {
		return fmt.Errorf("ranking ETS tables: %w", err)
	}
	for _, t := range tables {
		ch <- prometheus.MustNewConstMetric(etsMemoryDesc, prometheus.GaugeValue, t.values[0], t.name)
		ch <- prometheus.MustNewConstMetric(etsObjectsDesc, prometheus.GaugeValue, t.values[1], t.name)
	}
	return nil
}
