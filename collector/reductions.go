// The reductions collector: the node's total work, in reductions.

package collector

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register("reductions", true, TierFast, func() Collector { return reductionsCollector{} })
}

var reductionsDesc = prometheus.NewDesc(namespace+"_reductions_total",
	"Reductions (units of work) executed since the node started (statistics(reductions)). Up to one fast tier old.", nil, nil)

type reductionsCollector struct{}

func (reductionsCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	stats, err := statistics(ctx, node, "reductions")
	if err != nil {
		return err
	}
	// {Total, SinceLastCall}: the second half is shared by every caller on
	// the node, so only the total means anything to us.
	total, _, err := pair(stats)
	if err != nil {
		return fmt.Errorf("statistics(reductions): %w", err)
	}
	ch <- prometheus.MustNewConstMetric(reductionsDesc, prometheus.CounterValue, total)
	return nil
}
