// The ranking behind the beam_process_* metrics, with what must never be a label, for /top.

package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// TopSnapshot is the processes collector's latest ranking of one node.
type TopSnapshot struct {
	// Node is the node's name; the Exporter does not know it, /top fills it in.
	Node string `json:"node"`
	// Time is when the ranking was taken.
	Time time.Time `json:"time"`
	// Processes is how many processes the scan read.
	Processes int `json:"processes"`
	// WindowSeconds is the mean time between a process's two reductions
	// reads; each process's rate is over its own window (TopProcess).
	WindowSeconds float64 `json:"window_seconds"`
	// WindowErrorSeconds bounds how far a ranked process's window may be
	// off: the probe times its reads in chunks, not one by one.
	WindowErrorSeconds float64 `json:"window_error_seconds"`
	// MemorySlices above 1 means memory is ranked over that many refreshes,
	// one slice of the processes each; each entry has its own time.
	MemorySlices int          `json:"memory_slices"`
	Memory       []TopProcess `json:"memory"`
	MessageQueue []TopProcess `json:"message_queue_length"`
	Reductions   []TopProcess `json:"reductions_per_second"`
	// Groups are the sums by group for the process_groups collector, the
	// top K and "other" last, over the slices read so far; nil (and left
	// out of the JSON) when that collector is not enabled.
	Groups []ProcessGroup `json:"groups,omitempty"`
}

// TopProcess is one rank of a ranking: the ranked value, and the process as
// the node described it right after ranking it.
type TopProcess struct {
	Rank int `json:"rank"`
	// Value is what the process is ranked by: bytes, messages, or
	// reductions per second.
	Value float64 `json:"value"`
	// Pid is as pid_to_list/1 writes it on the node; list_to_pid/1 in a
	// remote shell on that node reads it back.
	Pid string `json:"pid"`
	// Name is the process label of the beam_process_* metrics.
	Name string `json:"name"`
	// Label is the proc_lib label in full, of which Name keeps the first
	// element; "" for a process without one.
	Label              string  `json:"label"`
	RegisteredName     string  `json:"registered_name"`
	CurrentFunction    string  `json:"current_function"`
	InitialCall        string  `json:"initial_call"`
	MemoryBytes        float64 `json:"memory_bytes"`
	MessageQueueLength float64 `json:"message_queue_length"`
	Reductions         float64 `json:"reductions"`
	// Exited is true when the process was gone by the time the probe came
	// to describe it; only Rank, Value and Pid are then known, and Name is
	// "exited", as in the metrics' process label.
	Exited bool      `json:"exited"`
	Time   time.Time `json:"time"`
	// WindowSeconds is, in the reductions ranking, the time between this
	// process's two reads, over which Value is its rate.
	WindowSeconds float64 `json:"window_seconds,omitempty"`
}

// ErrProcessesDisabled answers /top when there is no ranking to show.
var ErrProcessesDisabled = errors.New("the processes collector is disabled (--no-collector.processes), so there is no ranking to show")

// scan serves the ranker's latest ranking through its tier cache, as
// TopProcesses does but on the node a refresh is given, for a collector
// that reads the ranker's scan rather than scanning again (process_groups).
func (e *Exporter) scan(ctx context.Context, node Node) (TopSnapshot, error) {
	gen := node.Generation()
	if _, _, err := e.ranking.get(ctx, node); err != nil {
		return TopSnapshot{}, err
	}
	snap, ok := e.ranker.latestRanking(gen)
	if !ok {
		return TopSnapshot{}, errors.New("the connection to the node was re-established during the ranking")
	}
	return snap, nil
}

// A ranker is a collector that keeps, beside its metrics, the ranking they
// come from (the processes collector does); TopProcesses serves it.
type ranker interface {
	// latestRanking is the newest ranking taken on connection generation
	// generation, if any.
	latestRanking(generation uint64) (TopSnapshot, bool)
}

// TopProcesses returns the latest ranking of the node's processes, with the
// details the metrics cannot carry as labels. It goes through the ranking
// collector's tier cache, as a scrape would: a ranking younger than its
// tier costs the node nothing.
func (e *Exporter) TopProcesses(ctx context.Context) (TopSnapshot, error) {
	return e.TopProcessesWithin(ctx, math.MaxInt64) // the tier's lifetime bounds it
}

// TopProcessesWithin is TopProcesses for a caller that samples on its own
// clock (the ClickHouse sink): a cached ranking is served only if it was
// started less than maxAge ago, else the node is ranked anew. That ranking
// goes into the tier cache, so scrapes and /top are served from it too and
// the node is never scanned twice for the same moment.
func (e *Exporter) TopProcessesWithin(ctx context.Context, maxAge time.Duration) (TopSnapshot, error) {
	if e.ranker == nil {
		return TopSnapshot{}, ErrProcessesDisabled
	}
	t := e.target
	if err := t.EnsureConnected(ctx); err != nil {
		return TopSnapshot{}, fmt.Errorf("connecting to the node: %w", err)
	}
	if !t.Up() {
		return TopSnapshot{}, errors.New("not connected to the node")
	}
	gen := t.Generation()
	if _, _, err := e.ranking.getWithin(ctx, t, maxAge); err != nil {
		return TopSnapshot{}, err
	}
	snap, ok := e.ranker.latestRanking(gen)
	if !ok {
		return TopSnapshot{}, errors.New("the connection to the node was re-established during the ranking; try again")
	}
	return snap, nil
}
