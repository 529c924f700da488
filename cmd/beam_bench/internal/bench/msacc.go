// The cost of microstate accounting on a reductions-heavy workload.

package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// msaccResult holds the reductions per CPU second of each run, with
// accounting on and off.
type msaccResult struct {
	window  time.Duration
	on, off []float64
}

// measureMsacc alternates runs with accounting off and on, starting with
// off, so that drift in the shared machine's load hits both alike.
func measureMsacc(ctx context.Context, n *node, runs int, window time.Duration) (msaccResult, error) {
	out := msaccResult{window: window}
	for i := range 2 * runs {
		on := i%2 == 1
		t, err := n.call(ctx, window+time.Minute, "reductions_throughput", int(window.Milliseconds()), on)
		if err != nil {
			return out, fmt.Errorf("msacc run: %w", err)
		}
		v, err := okTuple(t)
		if err != nil {
			return out, err
		}
		perCPU, err := parseThroughput(v)
		if err != nil {
			return out, err
		}
		if on {
			out.on = append(out.on, perCPU)
		} else {
			out.off = append(out.off, perCPU)
		}
	}
	return out, nil
}

// cost is the throughput lost with accounting on, as a fraction of the
// throughput with it off: the median over the adjacent off/on pairs, which
// cancels the drift of a shared machine's load better than a ratio of
// medians.
func (m msaccResult) cost() float64 {
	var losses []float64
	for i := range min(len(m.on), len(m.off)) {
		if m.off[i] > 0 {
			losses = append(losses, 1-m.on[i]/m.off[i])
		}
	}
	return summarize(losses).median
}

// parseThroughput reads {Reductions, CpuMs} as reductions per CPU second.
func parseThroughput(t etf.Term) (float64, error) {
	tup, err := erlnode.Tuple(t, 2)
	if err != nil {
		return 0, err
	}
	red, err := erlnode.NonNegative(tup[0])
	if err != nil {
		return 0, err
	}
	cpu, err := erlnode.NonNegative(tup[1])
	if err != nil || cpu == 0 {
		return 0, fmt.Errorf("no CPU time in %v", t)
	}
	return red / (cpu / 1000), nil
}
