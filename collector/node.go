// The node collector: what the node runs and when it started.

package collector

import (
	"context"
	"fmt"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
)

func init() { register("node", true, TierSlow, func() Collector { return nodeCollector{} }) }

var (
	nodeInfoDesc = prometheus.NewDesc(namespace+"_node_info",
		"Always 1; the labels name the node's OTP release and ERTS version.", []string{"otp_release", "erts_version"}, nil)
	startTimeDesc = prometheus.NewDesc(namespace+"_start_time_seconds",
		"When the node started, in seconds since the Unix epoch.", nil, nil)
)

type nodeCollector struct{}

func (nodeCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	var labels [2]string
	for i, key := range []string{"otp_release", "version"} {
		v, err := systemInfo(ctx, node, key)
		if err != nil {
			return err
		}
		if labels[i], err = erlnode.Text(v); err != nil {
			return fmt.Errorf("system_info(%s): %w", key, err)
		}
	}
	start, err := startTime(ctx, node)
	if err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(nodeInfoDesc, prometheus.GaugeValue, 1, labels[0], labels[1])
	ch <- prometheus.MustNewConstMetric(startTimeDesc, prometheus.GaugeValue, start)
	return nil
}

// startTime is system_info(start_time), a monotonic timestamp, moved onto
// the system clock with the node's time offset and converted to seconds by
// the node itself, whose native time unit we do not know.
func startTime(ctx context.Context, node Node) (float64, error) {
	start, err := systemInfo(ctx, node, "start_time")
	if err != nil {
		return 0, err
	}
	offset, err := node.Call(ctx, "erlang", "time_offset")
	if err != nil {
		return 0, fmt.Errorf("reading time_offset: %w", err)
	}
	s, err1 := erlnode.Int64(start)
	o, err2 := erlnode.Int64(offset)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("start time: expected integers, got %v and %v", err1, err2)
	}
	micros, err := node.Call(ctx, "erlang", "convert_time_unit", s+o, etf.Atom("native"), etf.Atom("microsecond"))
	if err != nil {
		return 0, fmt.Errorf("converting the start time: %w", err)
	}
	us, err := erlnode.Int64(micros)
	if err != nil {
		return 0, fmt.Errorf("converting the start time: %w", err)
	}
	return float64(us) / 1e6, nil
}
