// The process_groups collector: memory, processes, mailboxes and reductions summed by kind of process.

package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/alecthomas/kingpin/v2"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

var processGroupsTopK = kingpin.Flag("collector.process_groups.top-k",
	"How many process groups to export, largest by memory first; the rest are summed as group=\"other\" (1-1000).").Default("20").Int()

// Opt-in for what it adds: 84 series per node by default, a long-lived
// cache process on the node, a scan 3-9% dearer with the probe's groups
// cache (observability.md has the paired runs), and a first grouping scan
// after each start that reads every process's group and costs up to two
// thirds more than a plain scan.
func init() {
	register("process_groups", false, TierSlow, func() Collector { return &processGroupsCollector{} }).validatedBy(validateProcessGroupsFlags)
}

var (
	processGroupMemoryDesc = prometheus.NewDesc(namespace+"_process_group_memory_bytes",
		"Memory of the processes of the group, summed. group is the process label of beam_process_* (registered name, first element of the proc_lib label, or initial call) or \"other\", the groups beyond --collector.process_groups.top-k; the groups sum to every process the processes collector's scan read. Up to one slow tier old; on a node of more than 100,000 processes each refresh reads a slice of them, so up to one slow tier per 100,000 processes old.",
		[]string{"group"}, nil)
	processGroupProcessesDesc = prometheus.NewDesc(namespace+"_process_group_processes",
		"Processes in the group, as the processes collector's scan read them. Up to one slow tier old (per 100,000 processes, as beam_process_group_memory_bytes).",
		[]string{"group"}, nil)
	processGroupQueueDesc = prometheus.NewDesc(namespace+"_process_group_message_queue_length",
		"Messages waiting in the mailboxes of the group's processes, summed. Up to one slow tier old (per 100,000 processes, as beam_process_group_memory_bytes).",
		[]string{"group"}, nil)
	processGroupReductionsDesc = prometheus.NewDesc(namespace+"_process_group_reductions_per_second",
		"Reductions per second of the group's processes, summed: each process's reductions between two reads at least --collector.processes.window apart, over the time between its own two reads. A rate over that window, not a counter: processes come and go. Up to one slow tier old (per 100,000 processes, as beam_process_group_memory_bytes).",
		[]string{"group"}, nil)
)

// otherGroup is the group label of what the top K leave out. A process
// registered as `other` is counted there too: one label, one meaning.
const otherGroup = "other"

// maxProbeGroups is how many groups a scan of one slice of a sliced node
// reports: the slices are merged here, and a group cut from one slice's
// list would be counted in that slice's other only.
const maxProbeGroups = maxTopN

// ProcessGroup is the sums over one group's processes, as
// beam_process_group_* export them and /top shows them.
type ProcessGroup struct {
	Group               string  `json:"group"`
	Processes           float64 `json:"processes"`
	MemoryBytes         float64 `json:"memory_bytes"`
	MessageQueue        float64 `json:"message_queue_length"`
	ReductionsPerSecond float64 `json:"reductions_per_second"`
}

func (g *ProcessGroup) add(o ProcessGroup) {
	g.Processes += o.Processes
	g.MemoryBytes += o.MemoryBytes
	g.MessageQueue += o.MessageQueue
	g.ReductionsPerSecond += o.ReductionsPerSecond
}

// processGroupsCollector has no scan of its own: the groups come with the
// processes collector's ranking, from the same scan of the node, so that
// they add up to what that scan read and the node pays for one scan. The
// Exporter gives it scan, which serves the ranking through the processes
// collector's tier cache as /top does: a scrape that refreshes both
// collectors shares the one refresh in flight. scan is nil when the
// processes collector is not enabled.
type processGroupsCollector struct {
	scan func(ctx context.Context, node Node) (TopSnapshot, error)
}

var errNoProcessesCollector = fmt.Errorf("%w: process groups come from the processes collector's scan, and that collector is disabled", errUnavailable)

func validateProcessGroupsFlags() error {
	if *processGroupsTopK < 1 || *processGroupsTopK > maxTopN {
		return fmt.Errorf("--collector.process_groups.top-k must be within 1-%d, got %d", maxTopN, *processGroupsTopK)
	}
	return nil
}

func (c *processGroupsCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	if c.scan == nil {
		return errNoProcessesCollector
	}
	snap, err := c.scan(ctx, node)
	if err != nil {
		return fmt.Errorf("reading the processes collector's scan: %w", err)
	}
	if snap.Groups == nil {
		return errors.New("the processes collector's scan holds no groups")
	}
	for _, g := range snap.Groups {
		ch <- prometheus.MustNewConstMetric(processGroupMemoryDesc, prometheus.GaugeValue, g.MemoryBytes, g.Group)
		ch <- prometheus.MustNewConstMetric(processGroupProcessesDesc, prometheus.GaugeValue, g.Processes, g.Group)
		ch <- prometheus.MustNewConstMetric(processGroupQueueDesc, prometheus.GaugeValue, g.MessageQueue, g.Group)
		ch <- prometheus.MustNewConstMetric(processGroupReductionsDesc, prometheus.GaugeValue, g.ReductionsPerSecond, g.Group)
	}
	return nil
}

// probeGroups is how many groups to ask a scan for: none without the
// process_groups collector, the top K when one call covers the node, and
// as many as the probe gives when slices are merged here.
func probeGroups(topK, slices int) int {
	switch {
	case topK == 0:
		return 0
	case slices == 1:
		return topK
	}
	return maxProbeGroups
}

// mergeGroups sums the slices' groups by name, keeps the k largest by
// memory (then by processes, then by name, for a stable order) and sums
// the rest, with each slice's own other, as group "other", always last and
// always there. Every process of every slice is in exactly one row.
func mergeGroups(bySlice [][]ProcessGroup, others []ProcessGroup, k int) []ProcessGroup {
	sums := map[string]*ProcessGroup{}
	other := ProcessGroup{Group: otherGroup}
	for _, o := range others {
		other.add(o)
	}
	for _, groups := range bySlice {
		for _, g := range groups {
			if g.Group == otherGroup {
				other.add(g)
				continue
			}
			s, ok := sums[g.Group]
			if !ok {
				s = &ProcessGroup{Group: g.Group}
				sums[g.Group] = s
			}
			s.add(g)
		}
	}
	all := make([]ProcessGroup, 0, len(sums)+1)
	for _, s := range sums {
		all = append(all, *s)
	}
	slices.SortFunc(all, func(a, b ProcessGroup) int {
		return cmp.Or(cmp.Compare(b.MemoryBytes, a.MemoryBytes), cmp.Compare(b.Processes, a.Processes), cmp.Compare(a.Group, b.Group))
	})
	for _, g := range all[min(k, len(all)):] {
		other.add(g)
	}
	return append(all[:min(k, len(all))], other)
}

// parseProcessGroups decodes the groups and groups_other of a top_processes
// answer: [{Name, Processes, Memory, MessageQueueLen, ReductionsPerSecond}]
// with unique names, at most limit of them, and {Processes, Memory,
// MessageQueueLen, ReductionsPerSecond}.
func parseProcessGroups(groups, other etf.Term, limit int) ([]ProcessGroup, ProcessGroup, error) {
	var o ProcessGroup
	entries, err := parseRanking(groups, 4, limit)
	if err != nil {
		return nil, o, err
	}
	out := make([]ProcessGroup, len(entries))
	for i, e := range entries {
		out[i] = ProcessGroup{Group: e.name, Processes: e.values[0], MemoryBytes: e.values[1],
			MessageQueue: e.values[2], ReductionsPerSecond: e.values[3]}
	}
	tup, err := erlnode.Tuple(other, 4)
	if err != nil {
		return nil, o, fmt.Errorf("other: %w", err)
	}
	var v [4]float64
	for i := range v {
		if v[i], err = erlnode.NonNegative(tup[i]); err != nil {
			return nil, o, fmt.Errorf("other: %w", err)
		}
	}
	o = ProcessGroup{Group: otherGroup, Processes: v[0], MemoryBytes: v[1], MessageQueue: v[2], ReductionsPerSecond: v[3]}
	return out, o, nil
}
