// The processes collector: the top processes by memory, mailbox and reductions.

package collector

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
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
		"Least time between a process's two reductions reads for the reductions ranking: the second pass over the processes starts this long after the first ended.").Default("20ms").Duration()
)

func init() {
	register("processes", true, TierSlow, func() Collector { return &processesCollector{} }).validatedBy(validateProcessesFlags)
}

var (
	processMemoryDesc = prometheus.NewDesc(namespace+"_process_memory_bytes",
		"Memory of the process at this rank among the largest by memory. process is its registered name, the first element of its proc_lib label, or its initial call (an Elixir module reads Lab.Hog, not Elixir.Lab.Hog), never a pid. Up to one slow tier old; on a node of more than 100,000 processes each refresh reads a slice of them, so up to one slow tier per 100,000 processes old.",
		[]string{"rank", "process"}, nil)
	processQueueDesc = prometheus.NewDesc(namespace+"_process_message_queue_length",
		"Message queue length of the process at this rank among the longest mailboxes. Up to one slow tier old.",
		[]string{"rank", "process"}, nil)
	processReductionsDesc = prometheus.NewDesc(namespace+"_process_reductions_per_second",
		"Reductions per second of the process at this rank among the busiest: its reductions between two reads at least --collector.processes.window apart, over the time between its own two reads. Up to one slow tier old.",
		[]string{"rank", "process"}, nil)
)

// maxWindow bounds the window a top_processes answer may report.
const maxWindow = time.Hour

// processRankings is the probe's top_processes answer.
type processRankings struct {
	memory, messageQueue, reductions []rankedProcess
	details                          map[string]processDetails // by pid
	window, windowError              time.Duration
	processes                        int
	// groups and groupsOther cover the processes of the call's slice.
	groups      []ProcessGroup
	groupsOther ProcessGroup
}

// rankedProcess is one line of a ranking as the probe sends it; window is
// the process's own, in the reductions ranking only.
type rankedProcess struct {
	pid    string
	value  float64
	window time.Duration
}

// processDetails is what the probe read of a winner at the end of its call.
type processDetails struct {
	name, label, registeredName, currentFunction, initialCall string
	memory, messageQueueLength, reductions                    float64
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
// same connection and slicing; a refresh merges them. With groupsTopK
// above 0 (the Exporter sets it when process_groups is enabled) it has the
// scan sum the processes by group too, and keeps and merges each slice's
// groups alike. It also keeps the latest rankings with their details, for
// /top and process_groups.
type processesCollector struct {
	groupsTopK int

	mu          sync.Mutex
	generation  uint64
	memory      [][]TopProcess   // by slice
	groups      [][]ProcessGroup // by slice
	groupsOther []ProcessGroup   // by slice
	next        int
	latest      *TopSnapshot // of generation
}

// validateProcessesFlags checks the collector's flags before anything starts.
func validateProcessesFlags() error {
	if *processesTopN < 1 || *processesTopN > maxTopN {
		return fmt.Errorf("--collector.processes.top-n must be within 1-%d, got %d", maxTopN, *processesTopN)
	}
	if *processesWindow < 0 || *processesWindow > 10*time.Second {
		return fmt.Errorf("--collector.processes.window must be within 0-10s, got %s", *processesWindow)
	}
	return nil
}

func (c *processesCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	gen := node.Generation()
	count, err := node.Call(ctx, "erlang", "system_info", etf.Atom("process_count"))
	if err != nil {
		return fmt.Errorf("counting processes: %w", err)
	}
	n, err := erlnode.NonNegative(count)
	if err != nil {
		return fmt.Errorf("counting processes: %w", err)
	}
	k := MemorySlices(int(min(n, math.MaxInt32)))
	c.mu.Lock()
	if gen != c.generation || len(c.memory) != k {
		c.generation, c.memory, c.next, c.latest = gen, make([][]TopProcess, k), 0, nil
		c.groups, c.groupsOther = make([][]ProcessGroup, k), make([]ProcessGroup, k)
	}
	slice := c.next
	c.mu.Unlock()

	groups := probeGroups(c.groupsTopK, k)
	reply, err := node.ProbeCall(ctx, "top_processes", *processesTopN, int(processesWindow.Milliseconds()), slice, k, groups)
	if err != nil {
		return probeError("ranking processes", err)
	}
	r, err := parseProcessRankings(reply, *processesTopN, groups)
	if err != nil {
		return fmt.Errorf("ranking processes: %w", err)
	}
	snap := r.snapshot(time.Now())

	c.mu.Lock()
	if c.generation == gen && len(c.memory) == k { // unless a concurrent refresh resliced
		c.memory[slice] = snap.Memory
		c.next = (slice + 1) % k
		snap.Memory = mergeRankings(c.memory, *processesTopN)
		snap.MemorySlices = k
		if c.groupsTopK > 0 {
			c.groups[slice], c.groupsOther[slice] = r.groups, r.groupsOther
			snap.Groups = mergeGroups(c.groups, c.groupsOther, c.groupsTopK)
		}
		c.latest = &snap
	}
	c.mu.Unlock()

	for _, ranking := range []struct {
		desc *prometheus.Desc
		rows []TopProcess
	}{
		{processMemoryDesc, snap.Memory},
		{processQueueDesc, snap.MessageQueue},
		{processReductionsDesc, snap.Reductions},
	} {
		for _, p := range ranking.rows {
			ch <- prometheus.MustNewConstMetric(ranking.desc, prometheus.GaugeValue, p.Value, strconv.Itoa(p.Rank), p.Name)
		}
	}
	return nil
}

// latestRanking is the newest ranking taken on connection generation gen.
func (c *processesCollector) latestRanking(gen uint64) (TopSnapshot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.latest == nil || c.generation != gen {
		return TopSnapshot{}, false
	}
	return *c.latest, true
}

// snapshot joins the rankings with their details. Reductions come as each
// process's rate over its own window; with no window there is no
// reductions ranking.
func (r processRankings) snapshot(now time.Time) TopSnapshot {
	rows := func(l []rankedProcess) []TopProcess {
		out := make([]TopProcess, len(l))
		for i, e := range l {
			d, alive := r.details[e.pid]
			if !alive {
				d.name = "exited"
			}
			out[i] = TopProcess{
				Rank: i + 1, Value: e.value, Pid: e.pid, Name: d.name, Label: d.label,
				RegisteredName: d.registeredName, CurrentFunction: d.currentFunction, InitialCall: d.initialCall,
				MemoryBytes: d.memory, MessageQueueLength: d.messageQueueLength, Reductions: d.reductions,
				Exited: !alive, Time: now, WindowSeconds: e.window.Seconds(),
			}
		}
		return out
	}
	s := TopSnapshot{
		Time: now, Processes: r.processes, WindowSeconds: r.window.Seconds(),
		WindowErrorSeconds: r.windowError.Seconds(), MemorySlices: 1,
		Memory: rows(r.memory), MessageQueue: rows(r.messageQueue), Reductions: []TopProcess{},
	}
	if r.window > 0 {
		s.Reductions = rows(r.reductions)
	}
	return s
}

// mergeRankings is the top n of the slices' rankings, largest first, ranked
// anew. The slices partition the processes, so no process is counted twice.
func mergeRankings(bySlice [][]TopProcess, n int) []TopProcess {
	all := []TopProcess{} // [] in /top's JSON, not null
	for _, r := range bySlice {
		all = append(all, r...)
	}
	slices.SortStableFunc(all, func(a, b TopProcess) int { return cmp.Compare(b.Value, a.Value) })
	all = all[:min(n, len(all))]
	for i := range all {
		all[i].Rank = i + 1
	}
	return all
}

// parseProcessRankings decodes {ok, #{memory, message_queue_len, reductions,
// details, window_us, error_us, processes, groups, groups_other}}, with at
// most maxGroups groups.
func parseProcessRankings(t etf.Term, topN, maxGroups int) (processRankings, error) {
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
		key     string
		dst     *[]rankedProcess
		windows bool
	}{
		{"memory", &r.memory, false},
		{"message_queue_len", &r.messageQueue, false},
		{"reductions", &r.reductions, true},
	} {
		v, err := erlnode.Field(m, f.key)
		if err != nil {
			return r, err
		}
		if *f.dst, err = parseProcessRanking(v, topN, f.windows); err != nil {
			return r, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	v, err := erlnode.Field(m, "details")
	if err != nil {
		return r, err
	}
	if r.details, err = parseProcessDetails(v, 3*topN); err != nil {
		return r, fmt.Errorf("details: %w", err)
	}
	if v, err = erlnode.Field(m, "processes"); err != nil {
		return r, err
	}
	processes, err := erlnode.NonNegative(v)
	if err != nil || processes > math.MaxInt32 {
		return r, fmt.Errorf("processes: not a process count: %v", v)
	}
	r.processes = int(processes)
	for _, f := range []struct {
		key string
		dst *time.Duration
	}{{"window_us", &r.window}, {"error_us", &r.windowError}} {
		if v, err = erlnode.Field(m, f.key); err != nil {
			return r, err
		}
		if *f.dst, err = parseWindow(v); err != nil {
			return r, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	groups, err := erlnode.Field(m, "groups")
	if err != nil {
		return r, err
	}
	other, err := erlnode.Field(m, "groups_other")
	if err != nil {
		return r, err
	}
	if r.groups, r.groupsOther, err = parseProcessGroups(groups, other, maxGroups); err != nil {
		return r, fmt.Errorf("groups: %w", err)
	}
	return r, nil
}

// parseWindow decodes a span in microseconds. The probe's windows are at
// most a minute plus its own run time; far beyond that the conversion to a
// Duration would overflow.
func parseWindow(t etf.Term) (time.Duration, error) {
	us, err := erlnode.NonNegative(t)
	if err != nil {
		return 0, err
	}
	return micros(us)
}

func micros(us float64) (time.Duration, error) {
	if us > maxWindow.Seconds()*1e6 {
		return 0, fmt.Errorf("%.0f µs is beyond %s", us, maxWindow)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// pidText is a local pid as pid_to_list/1 writes it.
var pidText = regexp.MustCompile(`^<[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}>$`)

func checkPid(pid string) error {
	if !pidText.MatchString(pid) {
		return fmt.Errorf("%.40q is not a pid", pid)
	}
	return nil
}

// parseProcessRanking decodes [{Pid, Value}], or with windows [{Pid,
// PerSecond, WindowUs}], at most limit entries.
func parseProcessRanking(t etf.Term, limit int, windows bool) ([]rankedProcess, error) {
	width := 1
	if windows {
		width = 2
	}
	entries, err := parseRanking(t, width, limit)
	if err != nil {
		return nil, err
	}
	out := make([]rankedProcess, len(entries))
	for i, e := range entries {
		if err := checkPid(e.name); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		out[i] = rankedProcess{pid: e.name, value: e.values[0]}
		if windows {
			if out[i].window, err = micros(e.values[1]); err != nil {
				return nil, fmt.Errorf("entry %d window: %w", i+1, err)
			}
		}
	}
	return out, nil
}

// parseProcessDetails decodes the list of details maps, at most limit of
// them, one per pid.
func parseProcessDetails(t etf.Term, limit int) (map[string]processDetails, error) {
	l, err := erlnode.List(t)
	if err != nil {
		return nil, err
	}
	if len(l) > limit {
		return nil, fmt.Errorf("expected at most %d entries, got %d", limit, len(l))
	}
	out := make(map[string]processDetails, len(l))
	for i, e := range l {
		m, err := erlnode.Map(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		v, err := erlnode.Field(m, "pid")
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		pid, err := erlnode.Text(v)
		if err == nil {
			err = checkPid(pid)
		}
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if _, dup := out[pid]; dup {
			return nil, fmt.Errorf("entry %d: %s described twice", i+1, pid)
		}
		var d processDetails
		for _, f := range []struct {
			key string
			dst *string
		}{
			{"name", &d.name}, {"label", &d.label}, {"registered_name", &d.registeredName},
			{"current_function", &d.currentFunction}, {"initial_call", &d.initialCall},
		} {
			if v, err = erlnode.Field(m, f.key); err == nil {
				*f.dst, err = erlnode.Text(v)
			}
			if err != nil {
				return nil, fmt.Errorf("entry %d %s: %w", i+1, f.key, err)
			}
		}
		for _, f := range []struct {
			key string
			dst *float64
		}{
			{"memory", &d.memory}, {"message_queue_len", &d.messageQueueLength}, {"reductions", &d.reductions},
		} {
			if v, err = erlnode.Field(m, f.key); err == nil {
				*f.dst, err = erlnode.NonNegative(v)
			}
			if err != nil {
				return nil, fmt.Errorf("entry %d %s: %w", i+1, f.key, err)
			}
		}
		out[pid] = d
	}
	return out, nil
}
