// The run_queue collector: processes waiting to run, and the schedulers online.

package collector

import (
	"context"
	"fmt"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
)

func init() { register("run_queue", true, TierFast, func() Collector { return runQueueCollector{} }) }

var (
	runQueueDesc = prometheus.NewDesc(namespace+"_run_queue_length",
		"Processes and ports ready to run but waiting, summed over the run queues of a scheduler type (statistics(run_queue_lengths_all)). Up to one fast tier old.",
		[]string{"type"}, nil)
	schedulersDesc = prometheus.NewDesc(namespace+"_schedulers",
		"Schedulers online, by type (system_info).", []string{"type"}, nil)
)

type runQueueCollector struct{}

func (runQueueCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	counts, err := readSchedulerCounts(ctx, node)
	if err != nil {
		return err
	}
	lengths, err := statistics(ctx, node, "run_queue_lengths_all")
	if err != nil {
		return err
	}
	queues, err := parseRunQueues(lengths, counts.normal)
	if err != nil {
		return fmt.Errorf("statistics(run_queue_lengths_all): %w", err)
	}
	for _, typ := range schedulerTypes {
		ch <- prometheus.MustNewConstMetric(runQueueDesc, prometheus.GaugeValue, queues[typ], typ)
		ch <- prometheus.MustNewConstMetric(schedulersDesc, prometheus.GaugeValue, float64(counts.online(typ)), typ)
	}
	return nil
}

// parseRunQueues decodes run_queue_lengths_all: one length per normal
// scheduler, then the dirty CPU queue, then the dirty IO queue.
func parseRunQueues(t etf.Term, normal int) (map[string]float64, error) {
	l, err := erlnode.List(t)
	if err != nil {
		return nil, err
	}
	if len(l) != normal+2 {
		return nil, fmt.Errorf("expected %d run queues (%d normal and 2 dirty), got %d", normal+2, normal, len(l))
	}
	out := map[string]float64{}
	for i, e := range l {
		n, err := erlnode.NonNegative(e)
		if err != nil {
			return nil, fmt.Errorf("run queue %d: %w", i+1, err)
		}
		switch i {
		case normal:
			out[typeDirtyCPU] = n
		case normal + 1:
			out[typeDirtyIO] = n
		default:
			out[typeNormal] += n
		}
	}
	return out, nil
}
