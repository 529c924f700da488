package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/go-kit/log"

	"github.com/beam-exporter/beam_exporter/collector"
)

// groupsPairs compares, refresh by refresh, the node CPU of the exporter's
// processes refresh without and with process_groups, one refresh of each
// per pair, in turn first, so that the machine's drift weighs on both
// alike; the means of refresh() put minutes between the two kinds of run,
// these pairs put none. Each refresh is a new exporter's first scrape, with
// tiers of an hour: with refresh()'s tiers of 1 ns, process_groups, which
// reads the processes collector's ranking through its tier cache, can find
// that ranking already stale within the same scrape and scan the node a
// second time, which no real tier does. It answers the pairs' ratios,
// with / without.
func groupsPairs(ctx context.Context, n *node, pairs int) ([]float64, error) {
	tiers := collector.Tiers{Fast: time.Hour, Slow: time.Hour}
	// names must all report success.
	one := func(names ...string) (time.Duration, error) {
		e, err := collector.NewExporterWith(n.client, tiers, names, log.NewNopLogger())
		if err != nil {
			return 0, err
		}
		before, err := n.cost(ctx)
		if err != nil {
			return 0, err
		}
		if _, ok, err := scrapeOnce(ctx, e, len(names)); err != nil {
			return 0, err
		} else if !ok {
			return 0, fmt.Errorf("a refresh of %v in the groups pairs failed", names)
		}
		after, err := n.cost(ctx)
		if err != nil {
			return 0, err
		}
		return after.sub(before).cpu, nil
	}
	without := func() (time.Duration, error) { return one("processes") }
	with := func() (time.Duration, error) { return one("processes", "process_groups") }
	// Untimed: the first grouping refresh learns every group.
	if _, err := with(); err != nil {
		return nil, err
	}
	var ratios []float64
	for i := range pairs {
		var a, b time.Duration
		var err error
		if i%2 == 0 {
			if a, err = without(); err == nil {
				b, err = with()
			}
		} else {
			if b, err = with(); err == nil {
				a, err = without()
			}
		}
		if err != nil {
			return nil, err
		}
		if a > 0 {
			ratios = append(ratios, b.Seconds()/a.Seconds())
		}
	}
	return ratios, nil
}
