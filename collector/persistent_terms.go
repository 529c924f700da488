// The persistent_terms collector: how many persistent terms the node holds and their memory.

package collector

import (
	"context"
	"fmt"

	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

func init() {
	register("persistent_terms", true, TierSlow, func() Collector { return persistentTermsCollector{} })
}

var (
	persistentTermsDesc = prometheus.NewDesc(namespace+"_persistent_terms",
		"Persistent terms stored on the node (persistent_term:info(), count). Up to one slow tier old.", nil, nil)
	persistentTermMemoryDesc = prometheus.NewDesc(namespace+"_persistent_term_memory_bytes",
		"Memory of the persistent terms and their table (persistent_term:info(), memory). Up to one slow tier old.", nil, nil)
)

type persistentTermsCollector struct{}

func (persistentTermsCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	reply, err := node.Call(ctx, "persistent_term", "info")
	if err != nil {
		return fmt.Errorf("reading persistent_term:info(): %w", err)
	}
	count, memory, err := parsePersistentTermInfo(reply)
	if err != nil {
		return fmt.Errorf("persistent_term:info(): %w", err)
	}
	ch <- prometheus.MustNewConstMetric(persistentTermsDesc, prometheus.GaugeValue, count)
	ch <- prometheus.MustNewConstMetric(persistentTermMemoryDesc, prometheus.GaugeValue, memory)
	return nil
}

// parsePersistentTermInfo decodes #{count := N, memory := Bytes}.
func parsePersistentTermInfo(reply etf.Term) (count, memory float64, err error) {
	m, err := erlnode.Map(reply)
	if err != nil {
		return 0, 0, err
	}
	for _, f := range []struct {
		key string
		v   *float64
	}{{"count", &count}, {"memory", &memory}} {
		v, err := erlnode.Field(m, f.key)
		if err != nil {
			return 0, 0, err
		}
		if *f.v, err = erlnode.NonNegative(v); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	return count, memory, nil
}
