// The scheduler collector: how busy each type of scheduler was.

package collector

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
)

var perScheduler = kingpin.Flag("collector.scheduler.per-scheduler",
	"Also export beam_scheduler_instance_utilization_ratio, one series per scheduler (off by default: large machines would multiply series).").Default("false").Bool()

func init() {
	register("scheduler", true, TierFast, func() Collector { return &schedulerCollector{} })
}

var schedulerUtilizationDesc = prometheus.NewDesc(namespace+"_scheduler_utilization_ratio",
	"Share of wall time the online schedulers of a type spent doing work, averaged over the type's schedulers, between the last two refreshes (statistics(scheduler_wall_time_all); needs the probe). Up to one fast tier old.",
	[]string{"type"}, nil)

var schedulerInstanceUtilizationDesc = prometheus.NewDesc(namespace+"_scheduler_instance_utilization_ratio",
	"Share of wall time one online scheduler spent doing work between the last two refreshes (only with --collector.scheduler.per-scheduler). Up to one fast tier old.",
	[]string{"type", "scheduler"}, nil)

// firstSampleWindow is how long the first refresh of a connection waits
// between its two samples, having no earlier one to compare with. A
// variable only so that tests of many reconnects can shorten it.
var firstSampleWindow = 500 * time.Millisecond

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
		return probeError("starting the probe session", err)
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
		if err := waitFirstSample(ctx); err != nil {
			return err
		}
	}
	current, err := sampleWallTime(ctx, node)
	if err != nil {
		return err
	}
	if restarted(previous, current) {
		// The flag went off and on since the last sample (a new probe
		// session), which restarts the counters: sample afresh.
		previous = current
		if err := waitFirstSample(ctx); err != nil {
			return err
		}
		if current, err = sampleWallTime(ctx, node); err != nil {
			return err
		}
	}
	c.previous, c.generation = current, node.Generation()
	ratios := schedulerRatios(previous, current, counts)
	for typ, ratio := range averageByType(ratios) {
		ch <- prometheus.MustNewConstMetric(schedulerUtilizationDesc, prometheus.GaugeValue, ratio, typ)
	}
	if *perScheduler {
		for _, r := range ratios {
			ch <- prometheus.MustNewConstMetric(schedulerInstanceUtilizationDesc, prometheus.GaugeValue, r.ratio, r.typ, strconv.Itoa(r.id))
		}
	}
	return nil
}

func waitFirstSample(ctx context.Context) error {
	select {
	case <-time.After(firstSampleWindow):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// restarted reports whether any scheduler's total time went backwards.
func restarted(previous, current map[int]wallTime) bool {
	for id, c := range current {
		if p, ok := previous[id]; ok && c.total < p.total {
			return true
		}
	}
	return false
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

// schedulerRatio is one online scheduler's active share of an interval.
type schedulerRatio struct {
	id    int
	typ   string
	ratio float64
}

// schedulerRatios computes active/total deltas for the online schedulers. A
// scheduler without a measurable interval is left out rather than reported as 0.
func schedulerRatios(prev, cur map[int]wallTime, counts schedulerCounts) []schedulerRatio {
	var out []schedulerRatio
	for id, c := range cur {
		typ, online := counts.typeOf(id)
		p, ok := prev[id]
		if !online || !ok || c.total <= p.total {
			continue
		}
		ratio := (c.active - p.active) / (c.total - p.total)
		out = append(out, schedulerRatio{id: id, typ: typ, ratio: min(max(ratio, 0), 1)})
	}
	return out
}

// averageByType averages the ratios of each scheduler type.
func averageByType(ratios []schedulerRatio) map[string]float64 {
	sums := map[string]float64{}
	n := map[string]int{}
	for _, r := range ratios {
		sums[r.typ] += r.ratio
		n[r.typ]++
	}
	for typ := range sums {
		sums[typ] /= float64(n[typ])
	}
	return sums
}
