// The processes collector: the top processes by memory, mailbox and reductions.
package collector

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	processesTopN = kingpin.Flag("collector.processes.top-n",
		"How many processes to rank by memory, mailbox and reductions (1-1000).").Default("10").Int()
	processesWindow = kingpin.Flag("collector.processes.window",
		"Least time between a process's two reductions reads for the reductions ranking; the scan itself counts toward it.").Default("20ms").Duration()
)

func init() {
	register("processes", true, TierSlow, func() Collector { return &processesCollector{} })
}

var (
	processMemoryDesc = prometheus.NewDesc(namespace+"_process_memory_bytes",
		"Memory of the process at this rank among the largest by memory. process is its registered name, proc_lib label or initial call, never a pid. Up to one slow tier old; on a node of more than 100,000 processes each refresh reads a slice of them, so up to one slow tier per 100,000 processes old.",
		[]string{"rank", "process"}, nil)
	processQueueDesc = prometheus.NewDesc(namespace+"_process_message_queue_length",
		"Message queue length of the process at this rank among the longest mailboxes. Up to one slow tier old.",
		[]string{"rank", "process"}, nil)
	processReductionsDesc = prometheus.NewDesc(namespace+"_process_reductions_per_second",
		"Reductions per second of the process at this rank among the busiest, measured between two reads at least --collector.processes.window apart. Up to one slow tier old.",
		[]string{"rank", "process"}, nil)
)

// maxWindow bounds the window a top_processes answer may report.
const maxWindow = time.Hour

// processRankings is the probe's top_processes answer.
type processRankings struct {
	memory, messageQueue, reductions []rankedEntry
	window                           time.Duration
}

// memorySlice is about how many processes a refresh reads memory for. That
// read costs the node a signal round trip per process, about ten times the
// other two, so a larger node has memory ranked over several refreshes,
// one slice of its processes each (mailboxes and reductions are ranked over
// all of them every time).
const memorySlice = 100_000

// MemorySlices is how many refreshes rank memory over a node of this many
// processes.
func MemorySlices(processes int) int {
	return min(max(1, (processes+memorySlice-1)/memorySlice), 64)
}

// processesCollector keeps the last memory ranking of each slice, for the
// same connection and slicing; a refresh merges them.
type processesCollector struct {
	mu         sync.Mutex
	generation uint64
	memory     [][]rankedEntry // by slice
	next       int
}

// ValidateProcessesFlags checks the collector's flags before anything starts.
func ValidateProcessesFlags() error {
	if *processesTopN < 1 || *processesTopN > maxTopN {
		return fmt.Errorf("--collector.processes.top-n must be within 1-%d, got %d", maxTopN, *processesTopN)
	}
	if *processesWindow < 0 || *processesWindow > 10*time.Second {
		return fmt.Errorf("--collector.processes.window must be within 0-10s, got %s", *processesWindow)
	}
	return nil
}

func (c *processesCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	count, err := node.Call(ctx, "erlang", "system_info", etf.Atom("process_count"))
	if err != nil {
		return fmt.Errorf("counting processes: %w", err)
	}
	n, err := erlnode.NonNegative(count)
	if err != nil {
		return fmt.Errorf("counting processes: %w", err)
	}
	k := MemorySlices(int(n))
	c.mu.Lock()
	if gen := node.Generation(); gen != c.generation || len(c.memory) != k {
		c.generation, c.memory, c.next = gen, make([][]rankedEntry, k), 0
	}
	slice := c.next
	c.mu.Unlock()

	reply, err := node.ProbeCall(ctx, "top_processes", *processesTopN, int(processesWindow.Milliseconds()), slice, k)
	if err != nil {
		return probeError("ranking processes", err)
	}
	r, err := parseProcessRankings(reply, *processesTopN)
	if err != nil {
		return fmt.Errorf("ranking processes: %w", err)
	}

	c.mu.Lock()
	if len(c.memory) == k { // unless a concurrent refresh resliced
		c.memory[slice] = r.memory
		c.next = (slice + 1) % k
		r.memory = mergeRankings(c.memory, *processesTopN)
	}
	c.mu.Unlock()

	for i, e := range r.memory {
		ch <- prometheus.MustNewConstMetric(processMemoryDesc, prometheus.GaugeValue, e.values[0], rankLabel(i), e.name)
	}
	for i, e := range r.messageQueue {
		ch <- prometheus.MustNewConstMetric(processQueueDesc, prometheus.GaugeValue, e.values[0], rankLabel(i), e.name)
	}
	if r.window > 0 {
		for i, e := range r.reductions {
			ch <- prometheus.MustNewConstMetric(processReductionsDesc, prometheus.GaugeValue,
				e.values[0]/r.window.Seconds(), rankLabel(i), e.name)
		}
	}
	return nil
}

// mergeRankings is the top n of the slices' rankings, largest first. The
// slices partition the processes, so no process is counted twice.
func mergeRankings(bySlice [][]rankedEntry, n int) []rankedEntry {
	var all []rankedEntry
	for _, r := range bySlice {
		all = append(all, r...)
	}
	slices.SortStableFunc(all, func(a, b rankedEntry) int { return cmp.Compare(b.values[0], a.values[0]) })
	return all[:min(n, len(all))]
}

// parseProcessRankings decodes {ok, #{memory, message_queue_len, reductions,
// window_us, processes}}.
func parseProcessRankings(t etf.Term, topN int) (processRankings, error) {
	var r processRankings
	body, err := okReply(t)
	if err != nil {
		return r, err
	}
	m, err := erlnode.Map(body)
	if err != nil {
		return r, err
	}
	for _, f := range []struct {
		key string
		dst *[]rankedEntry
	}{
		{"memory", &r.memory},
		{"message_queue_len", &r.messageQueue},
		{"reductions", &r.reductions},
	} {
		v, err := erlnode.Field(m, f.key)
		if err != nil {
			return r, err
		}
		if *f.dst, err = parseRanking(v, 1, topN); err != nil {
			return r, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	v, err := erlnode.Field(m, "window_us")
	if err != nil {
		return r, err
	}
	us, err := erlnode.NonNegative(v)
	if err != nil {
		return r, fmt.Errorf("window_us: %w", err)
	}
	// The probe's window is at most a minute plus its own run time; far
	// beyond that the conversion to a Duration would overflow.
	if us > maxWindow.Seconds()*1e6 {
		return r, fmt.Errorf("window_us: %.0f is beyond %s", us, maxWindow)
	}
	r.window = time.Duration(us) * time.Microsecond
	return r, nil
}
