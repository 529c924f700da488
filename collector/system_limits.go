// The system_limits collector: counts of processes, ports, atoms and ETS
// tables, each beside the limit it must stay under.

package collector

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	register("system_limits", true, TierSlow, func() Collector { return systemLimitsCollector{} })
}

type limitedResource struct {
	count, limit       *prometheus.Desc
	countKey, limitKey string
}

func newLimitedResource(countName, limitName, what, countKey, limitKey string) limitedResource {
	return limitedResource{
		count: prometheus.NewDesc(namespace+"_"+countName,
			"Number of "+what+" that exist on the node (system_info("+countKey+")). Up to one slow tier old.", nil, nil),
		limit: prometheus.NewDesc(namespace+"_"+limitName,
			"Maximum number of "+what+" the node allows (system_info("+limitKey+")). Up to one slow tier old.", nil, nil),
		countKey: countKey,
		limitKey: limitKey,
	}
}

var limitedResources = []limitedResource{
	newLimitedResource("processes", "process_limit", "processes", "process_count", "process_limit"),
	newLimitedResource("ports", "port_limit", "ports", "port_count", "port_limit"),
	// Atoms are never garbage collected: reaching the limit crashes the node.
	newLimitedResource("atoms", "atom_limit", "atoms", "atom_count", "atom_limit"),
	newLimitedResource("ets_tables", "ets_table_limit", "ETS tables", "ets_count", "ets_limit"),
}

type systemLimitsCollector struct{}

func (systemLimitsCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	for _, r := range limitedResources {
		count, err := systemInfoNumber(ctx, node, r.countKey)
		if err != nil {
			return err
		}
		limit, err := systemInfoNumber(ctx, node, r.limitKey)
		if err != nil {
			return err
		}
		ch <- prometheus.MustNewConstMetric(r.count, prometheus.GaugeValue, count)
		ch <- prometheus.MustNewConstMetric(r.limit, prometheus.GaugeValue, limit)
	}
	return nil
}
