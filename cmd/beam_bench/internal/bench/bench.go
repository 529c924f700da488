// Run: for each size, a node, every collector's refresh and the baseline's.

package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/beam-exporter/beam_exporter/collector"
	"github.com/beam-exporter/beam_exporter/erlnode"
)

// Config says what to measure.
type Config struct {
	Sizes    []int  // processes to hold on each node
	Tables   int    // ETS tables on each node
	TopN     int    // N of the baseline's rankings; the exporter's is its flag
	Exporter string // the beam_exporter binary, for its RSS, CPU and cached scrapes
	// Runs is how many times each refresh is repeated at 10k processes or
	// fewer; larger nodes get fewer (see runsFor).
	Runs        int
	MsaccRuns   int           // alternating on/off runs of the msacc workload
	MsaccWindow time.Duration // length of one msacc run
	Progress    io.Writer
}

// groupsPairsFor is how many pairs the process_groups comparison takes on
// a node of procs processes. A single pair's ratio spreads over 0.85-1.26
// (at 1,000,000 processes 12 pairs gave a median of 1.101 where 41 gave
// 1.020; at 10,000 two runs of about 40 pairs gave 1.013 and 1.107 where
// 201 pairs gave 1.062 and 1.077: BENCHMARKS.md). The smaller the node,
// the cheaper a pair, so the more of them.
func groupsPairsFor(procs int) int {
	switch {
	case procs <= 10_000:
		return 201
	case procs <= 100_000:
		return 101
	}
	return 41
}

// runsFor scales the repetitions down with the node: a 1M-process scan
// takes seconds, the recon baseline tens of seconds.
func (c Config) runsFor(procs int) int {
	switch {
	case procs <= 10_000:
		return c.Runs
	case procs <= 100_000:
		return max(c.Runs/2, 3)
	default:
		return 3
	}
}

func (c Config) progress(format string, args ...any) {
	fmt.Fprintf(c.Progress, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// refreshes is a refresh repeated: its durations and the node's mean cost.
type refreshes struct {
	durations []time.Duration
	failures  int
	cost      nodeCost // per refresh
}

// sizeResult is everything measured on one node.
type sizeResult struct {
	procs      int
	full       refreshes
	collectors map[string]refreshes
	scans      map[string][]scan // probe, recon, minimal
	groups     []float64         // the exporter's refresh, with / without process_groups, per pair
	binary     binaryResult
}

// Result is the whole benchmark.
type Result struct {
	Config     Config
	Started    time.Time
	OTP        string
	sizes      []sizeResult
	collectors []string
	msacc      msaccResult
}

// Run starts a node per size, measures it, and stops it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	dir, err := compileModule()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r := &Result{Config: cfg, Started: time.Now(), collectors: collector.Enabled()}
	for i, procs := range cfg.Sizes {
		cfg.progress("node %d/%d: starting, then %d processes and %d ETS tables", i+1, len(cfg.Sizes), procs, cfg.Tables)
		n, err := startNode(ctx, dir, procs)
		if err != nil {
			return nil, err
		}
		sr, err := r.measureNode(ctx, n, procs, i == 0)
		n.stop()
		if err != nil {
			return nil, fmt.Errorf("node with %d processes: %w", procs, err)
		}
		r.sizes = append(r.sizes, sr)
	}
	return r, nil
}

func (r *Result) measureNode(ctx context.Context, n *node, procs int, first bool) (sizeResult, error) {
	cfg := r.Config
	sr := sizeResult{collectors: map[string]refreshes{}, scans: map[string][]scan{}}
	t, err := n.call(ctx, 10*time.Minute, "populate", procs, cfg.Tables)
	if err != nil {
		return sr, fmt.Errorf("populating: %w", err)
	}
	count, err := okTuple(t)
	if err != nil {
		return sr, fmt.Errorf("populating: %w", err)
	}
	c, err := erlnode.NonNegative(count)
	if err != nil {
		return sr, fmt.Errorf("populating: %w", err)
	}
	sr.procs = int(c)
	if r.OTP == "" {
		if v, err := n.client.Call(ctx, "erlang", "system_info", etf.Atom("otp_release")); err == nil {
			r.OTP = fmt.Sprint(v)
			if l, ok := v.(etf.List); ok {
				r.OTP = etfString(l)
			}
		}
	}
	// Loads the probe, which the in-VM scans call directly.
	if _, err := n.client.ProbeCall(ctx, "top_processes", 1, 0, 0, 1, 0); err != nil {
		return sr, fmt.Errorf("loading the probe: %w", err)
	}
	runs := cfg.runsFor(procs)

	cfg.progress("  full refresh of the default collectors, %d runs", runs)
	if sr.full, err = refresh(ctx, n, r.collectors, runs); err != nil {
		return sr, err
	}
	for _, name := range r.collectors {
		cfg.progress("  %s alone, %d runs", name, runs)
		if sr.collectors[name], err = refresh(ctx, n, alone(name), runs); err != nil {
			return sr, err
		}
	}
	if procs >= 10_000 {
		pairs := groupsPairsFor(procs)
		cfg.progress("  the exporter's processes refresh without and with process_groups, %d pairs", pairs)
		if sr.groups, err = groupsPairs(ctx, n, pairs); err != nil {
			return sr, err
		}
	}
	for i := range runs {
		for _, what := range scanKinds {
			cfg.progress("  in-VM top-%d scan %d/%d: %s", cfg.TopN, i+1, runs, what)
			t, err := n.call(ctx, 30*time.Minute, "measure", etf.Atom(what), cfg.TopN, collector.MemorySlices(sr.procs))
			if err != nil {
				return sr, fmt.Errorf("measuring %s: %w", what, err)
			}
			s, err := parseScan(t)
			if err != nil {
				return sr, fmt.Errorf("measuring %s: %w", what, err)
			}
			sr.scans[what] = append(sr.scans[what], s)
		}
	}
	cfg.progress("  the beam_exporter binary: cached scrapes, refreshing scrapes, RSS")
	if sr.binary, err = measureBinary(ctx, cfg, n, runs); err != nil {
		return sr, err
	}
	if first {
		cfg.progress("  microstate accounting: %d alternating runs of %s each way", cfg.MsaccRuns, cfg.MsaccWindow)
		if r.msacc, err = measureMsacc(ctx, n, cfg.MsaccRuns, cfg.MsaccWindow); err != nil {
			return sr, err
		}
	}
	return sr, nil
}

// scanKinds are the in-VM scans measured: the probe's without and with
// process groups, and the two baselines.
var scanKinds = []string{"probe", "probe_groups", "recon", "minimal"}

// alone is the collectors that make name's refresh: process_groups sums the
// processes collector's scan, so it is measured with it, and its own cost
// is the difference.
func alone(name string) []string {
	if name == "process_groups" {
		return []string{"processes", name}
	}
	return []string{name}
}

// refresh times runs scrapes of an exporter holding the named collectors,
// with tiers so short that every scrape refreshes them all. The node's cost
// is read before the first and after the last, so that its coarse clock
// (ms) averages out.
func refresh(ctx context.Context, n *node, names []string, runs int) (refreshes, error) {
	var out refreshes
	e, err := collector.NewExporterWith(n.client, collector.Tiers{Fast: time.Nanosecond, Slow: time.Nanosecond}, names, log.NewNopLogger())
	if err != nil {
		return out, err
	}
	// One refresh first, untimed: the scheduler collector's first refresh
	// waits for a second sample, which no later one does.
	warm := prometheus.NewRegistry()
	warm.MustRegister(e.Scrape(ctx))
	if _, err := warm.Gather(); err != nil {
		return out, err
	}
	before, err := n.cost(ctx)
	if err != nil {
		return out, err
	}
	for range runs {
		took, ok, err := scrapeOnce(ctx, e, len(names))
		out.durations = append(out.durations, took)
		if err != nil || !ok {
			out.failures++
		}
	}
	after, err := n.cost(ctx)
	if err != nil {
		return out, err
	}
	total := after.sub(before)
	out.cost = nodeCost{cpu: total.cpu / time.Duration(runs), reductions: total.reductions / float64(runs)}
	return out, nil
}

// scrapeOnce scrapes e as Prometheus would, within five minutes. It
// answers how long the gathering took, and whether the node was up and
// all want collectors succeeded.
func scrapeOnce(ctx context.Context, e *collector.Exporter, want int) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Scrape(ctx))
	start := time.Now()
	families, err := reg.Gather()
	return time.Since(start), err == nil && allSucceeded(families, want), err
}

func allSucceeded(families []*dto.MetricFamily, want int) bool {
	ok := 0
	for _, f := range families {
		switch f.GetName() {
		case "beam_up":
			if f.Metric[0].GetGauge().GetValue() != 1 {
				return false
			}
		case "beam_scrape_collector_success":
			for _, m := range f.Metric {
				if m.GetGauge().GetValue() == 1 {
					ok++
				}
			}
		}
	}
	return ok == want
}

func okTuple(t etf.Term) (etf.Term, error) {
	tup, ok := t.(etf.Tuple)
	if !ok || len(tup) != 2 || tup[0] != etf.Atom("ok") {
		return nil, fmt.Errorf("expected {ok, _}, got %v", t)
	}
	return tup[1], nil
}

// etfString reads a charlist such as system_info(otp_release)'s.
func etfString(l etf.List) string {
	var b strings.Builder
	for _, c := range l {
		if i, ok := c.(int); ok {
			b.WriteRune(rune(i))
		}
	}
	return b.String()
}
