// The locks collector: ERTS lock counters, present only on lock-counting builds.

package collector

import (
	"context"
	"fmt"

	"github.com/alecthomas/kingpin/v2"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

var locksTopN = kingpin.Flag("collector.locks.top-n", "How many lock classes to report, most collisions first (1-1000).").Default("10").Int()

func init() {
	register("locks", true, TierSlow, func() Collector { return locksCollector{} }).validatedBy(validateLocksFlags)
}

var (
	lockCountingDesc = prometheus.NewDesc(namespace+"_lock_counting_available",
		"1 when the emulator is a lock-counting build (system_info(lock_counting)) and lock counters are exported; 0 on standard builds, which have none.", nil, nil)
	lockCollisionsDesc = prometheus.NewDesc(namespace+"_lock_collisions_total",
		"Times a lock of this class was found taken, summed over the class's instances (lock-counting builds only). Up to one slow tier old.",
		[]string{"lock"}, nil)
	lockAcquisitionsDesc = prometheus.NewDesc(namespace+"_lock_acquisitions_total",
		"Times a lock of this class was acquired, summed over the class's instances (lock-counting builds only). Up to one slow tier old.",
		[]string{"lock"}, nil)
)

// validateLocksFlags checks the collector's flags before anything starts.
func validateLocksFlags() error {
	if *locksTopN < 1 || *locksTopN > maxTopN {
		return fmt.Errorf("--collector.locks.top-n must be within 1-%d, got %d", maxTopN, *locksTopN)
	}
	return nil
}

type locksCollector struct{}

func (locksCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	available, err := systemInfo(ctx, node, "lock_counting")
	if err != nil {
		return err
	}
	if !erlnode.IsTrue(available) {
		ch <- prometheus.MustNewConstMetric(lockCountingDesc, prometheus.GaugeValue, 0)
		return nil
	}
	reply, err := node.ProbeCall(ctx, "lock_counters", *locksTopN)
	if err != nil {
		return probeError("reading lock counters", err)
	}
	body, err := okReply(reply)
	if err != nil {
		return fmt.Errorf("reading lock counters: %w", err)
	}
	if body == etf.Atom("unavailable") {
		ch <- prometheus.MustNewConstMetric(lockCountingDesc, prometheus.GaugeValue, 0)
		return nil
	}
	classes, err := parseRanking(body, 2, *locksTopN)
	if err != nil {
		return fmt.Errorf("reading lock counters: %w", err)
	}
	ch <- prometheus.MustNewConstMetric(lockCountingDesc, prometheus.GaugeValue, 1)
	for _, c := range classes {
		ch <- prometheus.MustNewConstMetric(lockAcquisitionsDesc, prometheus.CounterValue, c.values[0], c.name)
		ch <- prometheus.MustNewConstMetric(lockCollisionsDesc, prometheus.CounterValue, c.values[1], c.name)
	}
	return nil
}
