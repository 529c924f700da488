// The scheduler collector: how busy each type of scheduler was.
package collector

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register("scheduler", true, TierFast, func() Collector { return &schedulerCollector{} })
}

var schedulerUtilizationDesc = prometheus.NewDesc(namespace+"_scheduler_utilization_ratio",
	"Share of wall time the online schedulers of a type spent doing work, averaged over the type's schedulers, between the last two refreshes (statistics(scheduler_wall_time_all); needs the probe). Up to one fast tier old.",
	[]string{"type"}, nil)

// firstSampleWindow is how long the first refresh of a connection waits
// between its two samples, having no earlier one to compare with.
const firstSampleWindow = 500 * time.Millisecond

// wallTime is one scheduler's cumulative {Active, Total} time.
type wallTime struct{ active, total float64 }

type schedulerCollector struct {
	mu         sync.Mutex
	generation uint64
	previous   map[int]wallTime
}

func (c *schedulerCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	// Scheduler wall time stays on only while a process that enabled it
	// lives; the probe session is that process.
	if err := node.EnsureSession(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	counts, err := readSchedulerCounts(ctx, node)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	previous := c.previous
	if c.generation != node.Generation() || previous == nil {
		if previous, err = sampleWallTime(ctx, node); err != nil {
			return err
		}
		select {
		case <-time.After(firstSampleWindow):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	current, err := sampleWallTime(ctx, node)
	if err != nil {
		return err
	}
	c.previous, c.generation = current, node.Generation()
	for typ, ratio := range utilization(previous, current, counts) {
		ch <- prometheus.MustNewConstMetric(schedulerUtilizationDesc, prometheus.GaugeValue, ratio, typ)
	}
	return nil
}

func sampleWallTime(ctx context.Context, node Node) (map[int]wallTime, error) {
	reply, err := statistics(ctx, node, "scheduler_wall_time_all")
	if err != nil {
		return nil, err
	}
	sample, err := parseWallTime(reply)
	if err != nil {
		return nil, fmt.Errorf("statistics(scheduler_wall_time_all): %w", err)
	}
	return sample, nil
}

// parseWallTime decodes [{SchedulerId, ActiveTime, TotalTime}]. The atom
// undefined means scheduler wall time is off on the node.
func parseWallTime(t etf.Term) (map[int]wallTime, error) {
	if t == etf.Atom("undefined") {
		return nil, fmt.Errorf("scheduler wall time is not enabled on the node")
	}
	l, err := erlnode.List(t)
	if err != nil {
		return nil, err
	}
	out := make(map[int]wallTime, len(l))
	for _, e := range l {
		tup, err := erlnode.Tuple(e, 3)
		if err != nil {
			return nil, err
		}
		id, err := erlnode.Int64(tup[0])
		if err != nil {
			return nil, err
		}
		active, err := erlnode.NonNegative(tup[1])
		if err != nil {
			return nil, err
		}
		total, err := erlnode.NonNegative(tup[2])
		if err != nil {
			return nil, err
		}
		out[int(id)] = wallTime{active, total}
	}
	return out, nil
}

// utilization averages active/total deltas over the online schedulers of
// each type. A type without a measurable interval is left out rather than
// reported as 0.
func utilization(prev, cur map[int]wallTime, counts schedulerCounts) map[string]float64 {
	sums := map[string]float64{}
	n := map[string]int{}
	for id, c := range cur {
		typ, online := counts.typeOf(id)
		p, ok := prev[id]
		if !online || !ok || c.total <= p.total {
			continue
		}
		ratio := (c.active - p.active) / (c.total - p.total)
		sums[typ] += min(max(ratio, 0), 1)
		n[typ]++
	}
	out := map[string]float64{}
	for typ, s := range sums {
		out[typ] = s / float64(n[typ])
	}
	return out
}
