// Small wrappers for the read-only BIFs the collectors call on the node.

package collector

import (
	"context"
	"fmt"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
)

// systemInfo calls erlang:system_info(Key).
func systemInfo(ctx context.Context, node Node, key string) (etf.Term, error) {
	v, err := node.Call(ctx, "erlang", "system_info", etf.Atom(key))
	if err != nil {
		return nil, fmt.Errorf("reading system_info(%s): %w", key, err)
	}
	return v, nil
}

// systemInfoNumber calls erlang:system_info(Key) for a non-negative integer.
func systemInfoNumber(ctx context.Context, node Node, key string) (float64, error) {
	v, err := systemInfo(ctx, node, key)
	if err != nil {
		return 0, err
	}
	f, err := erlnode.NonNegative(v)
	if err != nil {
		return 0, fmt.Errorf("system_info(%s): %w", key, err)
	}
	return f, nil
}

// statistics calls erlang:statistics(Key).
func statistics(ctx context.Context, node Node, key string) (etf.Term, error) {
	v, err := node.Call(ctx, "erlang", "statistics", etf.Atom(key))
	if err != nil {
		return nil, fmt.Errorf("reading statistics(%s): %w", key, err)
	}
	return v, nil
}

// pair decodes a {A, B} tuple of non-negative integers, the shape of most
// erlang:statistics/1 answers.
func pair(t etf.Term) (float64, float64, error) {
	tup, err := erlnode.Tuple(t, 2)
	if err != nil {
		return 0, 0, err
	}
	a, err := erlnode.NonNegative(tup[0])
	if err != nil {
		return 0, 0, err
	}
	b, err := erlnode.NonNegative(tup[1])
	if err != nil {
		return 0, 0, err
	}
	return a, b, nil
}
