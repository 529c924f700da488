// Decoding the probe's ranked lists, shared by the processes, ets and locks collectors.

package collector

import (
	"errors"
	"fmt"

	"github.com/ergo-services/ergo/etf"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// maxTopN bounds every top-N flag; the probe refuses more.
const maxTopN = 1000

// rankedEntry is one line of a ranking: a stable name and its figures.
type rankedEntry struct {
	name   string
	values []float64
}

// parseRanking decodes [{Name, V1, V2, ...}] with width figures per entry,
// refusing more than limit entries (the probe promised at most that many)
// and a name twice: each name is a label value, or a pid, of one entry.
func parseRanking(t etf.Term, width, limit int) ([]rankedEntry, error) {
	l, err := erlnode.List(t)
	if err != nil {
		return nil, err
	}
	if len(l) > limit {
		return nil, fmt.Errorf("expected at most %d entries, got %d", limit, len(l))
	}
	out := make([]rankedEntry, 0, len(l))
	seen := make(map[string]bool, len(l))
	for i, e := range l {
		tup, err := erlnode.Tuple(e, width+1)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		name, err := erlnode.Text(tup[0])
		if err != nil {
			return nil, fmt.Errorf("entry %d name: %w", i+1, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("entry %d: %.40q twice", i+1, name)
		}
		seen[name] = true
		entry := rankedEntry{name: name, values: make([]float64, width)}
		for j := range width {
			if entry.values[j], err = erlnode.NonNegative(tup[j+1]); err != nil {
				return nil, fmt.Errorf("entry %d: %w", i+1, err)
			}
		}
		out = append(out, entry)
	}
	return out, nil
}

// okReply unwraps the probe's {ok, Value}; {error, Reason} becomes an error.
func okReply(t etf.Term) (etf.Term, error) {
	tup, err := erlnode.Tuple(t, 2)
	if err != nil {
		return nil, err
	}
	switch tup[0] {
	case etf.Atom("ok"):
		return tup[1], nil
	case etf.Atom("error"):
		reason, _ := erlnode.Atom(tup[1])
		return nil, fmt.Errorf("the probe refused: %s", reason)
	}
	return nil, fmt.Errorf("expected {ok, _} or {error, _}")
}

// probeError wraps a failed probe call; a probe that may not be loaded makes
// the collector unavailable rather than broken.
func probeError(what string, err error) error {
	if errors.Is(err, erlnode.ErrProbeDisabled) {
		return fmt.Errorf("%s: %w: %w", what, errUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
