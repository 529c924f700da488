// Decoding the node's measurements and summarizing repeated runs.

package bench

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// nodeCost is the node's CPU time and reductions at one moment.
type nodeCost struct {
	cpu        time.Duration
	reductions float64
}

func (c nodeCost) sub(o nodeCost) nodeCost {
	return nodeCost{cpu: c.cpu - o.cpu, reductions: c.reductions - o.reductions}
}

// parseNodeCost decodes node_cost/0's {CpuMs, Reductions}.
func parseNodeCost(t etf.Term) (nodeCost, error) {
	tup, err := erlnode.Tuple(t, 2)
	if err != nil {
		return nodeCost{}, err
	}
	cpu, err := erlnode.NonNegative(tup[0])
	if err != nil {
		return nodeCost{}, fmt.Errorf("cpu: %w", err)
	}
	red, err := erlnode.NonNegative(tup[1])
	if err != nil {
		return nodeCost{}, fmt.Errorf("reductions: %w", err)
	}
	return nodeCost{cpu: time.Duration(cpu) * time.Millisecond, reductions: red}, nil
}

// scan is one in-VM top-N refresh as measure/2 reports it.
type scan struct {
	wall, cpu  time.Duration
	reductions float64
	peakBytes  float64
}

// parseScan decodes measure/2's map; a status other than ok is an error.
func parseScan(t etf.Term) (scan, error) {
	m, err := erlnode.Map(t)
	if err != nil {
		return scan{}, err
	}
	if st, err := erlnode.Field(m, "status"); err != nil || st != etf.Atom("ok") {
		return scan{}, fmt.Errorf("scan failed: %v", st)
	}
	var s scan
	for _, f := range []struct {
		key string
		set func(float64)
	}{
		{"wall_us", func(v float64) { s.wall = time.Duration(v) * time.Microsecond }},
		{"cpu_ms", func(v float64) { s.cpu = time.Duration(v) * time.Millisecond }},
		{"reductions", func(v float64) { s.reductions = v }},
		{"peak_bytes", func(v float64) { s.peakBytes = v }},
	} {
		v, err := erlnode.Field(m, f.key)
		if err != nil {
			return scan{}, err
		}
		x, err := erlnode.NonNegative(v)
		if err != nil {
			return scan{}, fmt.Errorf("%s: %w", f.key, err)
		}
		f.set(x)
	}
	return s, nil
}

// summary is the median and 99th percentile of repeated runs. With fewer
// than 100 runs the 99th percentile is the largest.
type summary struct {
	n         int
	median, p float64
}

func summarize(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	s := slices.Sorted(slices.Values(xs))
	median := s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	rank := int(math.Ceil(0.99*float64(len(s)))) - 1 // nearest-rank
	return summary{n: len(s), median: median, p: s[max(rank, 0)]}
}

func durations(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// ms formats seconds as milliseconds with sensible precision.
func ms(seconds float64) string {
	v := seconds * 1000
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

// mb formats bytes as MB (10^6).
func mb(bytes float64) string { return fmt.Sprintf("%.1f MB", bytes/1e6) }
