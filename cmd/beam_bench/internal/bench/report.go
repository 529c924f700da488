// The benchmark's report: Markdown tables and the targets, judged.

package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/beam-exporter/beam_exporter/collector"
)

// Write prints the report.
func (r *Result) Write(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("# beam_exporter benchmark, %s", r.Started.Format("2006-01-02 15:04 MST"))
	p("")
	p("Machine: %s, %d CPUs, %s RAM, Linux %s, OTP %s, %s; load average %s at the end.",
		cpuModel(), runtime.NumCPU(), memTotal(), kernel(), r.OTP, runtime.Version(), loadAvg())
	p("Each node holds the processes below plus %d ETS tables; schedulers run with +sbwt none. "+
		"Median and p99 (the largest, below 100 runs) over the runs shown.", r.Config.Tables)
	p("")

	p("## The exporter")
	p("")
	p("| processes | runs | full refresh median | p99 | node CPU / refresh | node reductions / refresh | cached scrape median | p99 | exporter CPU / cached scrape | / refreshing scrape | exporter RSS (peak) | series (beam_) | node share, 15 s/30 s tiers |")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range r.sizes {
		full := summarize(durations(s.full.durations))
		cached := summarize(durations(s.binary.cached))
		p("| %d | %d%s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s (%s) | %d (%d) | %.3f%% |",
			s.procs, full.n, failed(s.full.failures), ms(full.median), ms(full.p), ms(s.full.cost.cpu.Seconds()),
			s.full.cost.reductions, ms(cached.median), ms(cached.p),
			ms(s.binary.cpuCached.Seconds()), ms(s.binary.cpuRefreshing.Seconds()),
			mb(s.binary.rssBytes), mb(s.binary.hwmBytes), s.binary.series, s.binary.beamSeries, 100*r.share(s))
	}
	p("")
	p("`promtool check metrics` on the default exposition: %s", promtoolVerdict(r.sizes))
	p("")

	p("## Each collector alone")
	p("")
	header := "| collector | tier |"
	rule := "|---|---|"
	for _, s := range r.sizes {
		header += fmt.Sprintf(" %d: median / p99 / node CPU |", s.procs)
		rule += "---|"
	}
	p("%s", header)
	p("%s", rule)
	for _, name := range r.collectors {
		row := fmt.Sprintf("| `%s` | %s |", name, collector.TierOf(name))
		for _, s := range r.sizes {
			c := s.collectors[name]
			d := summarize(durations(c.durations))
			row += fmt.Sprintf(" %s / %s / %s%s |", ms(d.median), ms(d.p), ms(c.cost.cpu.Seconds()), failed(c.failures))
		}
		p("%s", row)
	}
	p("")

	p("## Top-N on the node: the probe's scan against the in-VM baseline")
	p("")
	p("In the node, in a fresh process: `probe`, the probe's `top_processes(%d, 0, 0, Slices, Deadline)` as the `processes` collector "+
		"calls it (memory read for one slice of the processes: Slices is one per 100,000 processes); `probe_groups`, the same "+
		"scan summing the processes by group as it does with process_groups enabled (20 groups in one slice, 1000 per slice "+
		"beyond); `recon`, three passes as "+
		"`recon:proc_count/2` makes them (processes/0 less the caller, process_info/2 of the attribute, registered_name, "+
		"current_function and initial_call into a list, then the first %d through a heap bounded to %[2]d entries, as "+
		"`recon_lib:sublist_top_n_attrs/2`), one each for memory, message_queue_len and reductions; `minimal`, "+
		"the same passes asking for the attribute alone. Node CPU is "+
		"statistics(runtime) of the whole node; peak memory is the scanning process's largest heap, old heap, "+
		"heap fragments and referenced binaries, from its GC trace.", r.Config.TopN, r.Config.TopN)
	p("")
	p("| processes | scan | runs | wall median | node CPU median | node CPU p99 | reductions median | peak memory median | bytes / process | CPU ratio to recon | to minimal |")
	p("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range r.sizes {
		recon := summarize(cpus(s.scans["recon"])).median
		minimal := summarize(cpus(s.scans["minimal"])).median
		for _, what := range scanKinds {
			sc := s.scans[what]
			cpu := summarize(cpus(sc))
			peak := summarize(field(sc, func(x scan) float64 { return x.peakBytes })).median
			p("| %d | %s | %d | %s | %s | %s | %.3g | %s | %.0f | %s | %s |", s.procs, what, cpu.n,
				ms(summarize(field(sc, func(x scan) float64 { return x.wall.Seconds() })).median),
				ms(cpu.median), ms(cpu.p),
				summarize(field(sc, func(x scan) float64 { return x.reductions })).median,
				mb(peak), peak/float64(max(s.procs, 1)), ratio(cpu.median, recon), ratio(cpu.median, minimal))
		}
		proc := s.collectors["processes"].cost.cpu.Seconds()
		p("| %d | exporter's `processes` refresh | %d | | %s (mean) | | | | | %s | %s |", s.procs,
			len(s.collectors["processes"].durations), ms(proc), ratio(proc, recon), ratio(proc, minimal))
		if g, ok := s.collectors["process_groups"]; ok {
			p("| %d | exporter's `processes` and `process_groups` refresh | %d | | %s (mean) | | | | | %s | %s |", s.procs,
				len(g.durations), ms(g.cost.cpu.Seconds()), ratio(g.cost.cpu.Seconds(), recon), ratio(g.cost.cpu.Seconds(), minimal))
		}
	}
	p("")

	p("## Microstate accounting")
	p("")
	if len(r.msacc.on) > 0 {
		p("Per scheduler one computing process and a message-passing pair, for %s, accounting off and on alternately, %d runs each; reductions per second of node CPU time:",
			r.msacc.window, len(r.msacc.on))
		p("")
		p("- off: %s (median %.4g)", floats(r.msacc.off), summarize(r.msacc.off).median)
		p("- on: %s (median %.4g)", floats(r.msacc.on), summarize(r.msacc.on).median)
		p("- throughput cost of accounting: %.2f%% from the medians; %.2f%%, the median of the %d adjacent off/on pairs",
			100*(1-summarize(r.msacc.on).median/summarize(r.msacc.off).median), 100*r.msacc.cost(), len(r.msacc.on))
		p("")
	}

	p("## Targets (issue 4)")
	p("")
	for _, t := range r.targets() {
		p("- %s", t)
	}
}

// share is the fraction of one scheduler the node spends on the exporter
// with the default 15 s and 30 s tiers: each collector's node CPU per
// refresh, alone, divided by its tier.
func (r *Result) share(s sizeResult) float64 {
	var f float64
	for _, name := range r.collectors {
		tier := 30.0
		if collector.TierOf(name) == collector.TierFast {
			tier = 15
		}
		cpu := s.collectors[name].cost.cpu.Seconds()
		if name == "process_groups" { // measured with the scan it shares
			cpu = max(0, cpu-s.collectors["processes"].cost.cpu.Seconds())
		}
		f += cpu / tier
	}
	return f
}

func (r *Result) size(procs int) (sizeResult, bool) {
	for _, s := range r.sizes {
		if s.procs >= procs && s.procs < procs+procs/10 {
			return s, true
		}
	}
	return sizeResult{}, false
}

// targets judges the targets against what was measured.
func (r *Result) targets() []string {
	var out []string
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	if s, ok := r.size(1_000_000); ok {
		recon := summarize(cpus(s.scans["recon"])).median
		proc := s.collectors["processes"].cost.cpu.Seconds()
		probe := summarize(cpus(s.scans["probe"])).median
		out = append(out, fmt.Sprintf("top-N node cost at 1M processes ≤ 1/2 of the recon-style baseline (aim 1/3): exporter refresh %s, in-VM scan %s: %s",
			ratio(proc, recon), ratio(probe, recon), verdict(proc <= recon/2)))
		peak := summarize(field(s.scans["probe"], func(x scan) float64 { return x.peakBytes })).median
		out = append(out, fmt.Sprintf("peak extra memory of the scan at 1M processes: %s (%.0f bytes per process: the process list, 8 bytes per process for the window, and garbage)",
			mb(peak), peak/float64(s.procs)))
		full := summarize(durations(s.full.durations))
		out = append(out, fmt.Sprintf("full refresh at 1M processes < 3 s: median %s, p99 %s: %s", ms(full.median), ms(full.p), verdict(full.median < 3)))
	}
	if s, ok := r.size(10_000); ok {
		full := summarize(durations(s.full.durations))
		out = append(out, fmt.Sprintf("full refresh at 10k processes < 50 ms: median %s, p99 %s: %s", ms(full.median), ms(full.p), verdict(full.median < 0.05)))
		out = append(out, fmt.Sprintf("node share at 10k processes with 15 s/30 s tiers < 0.5%% of one scheduler: %.3f%%: %s", 100*r.share(s), verdict(r.share(s) < 0.005)))
	}
	for _, s := range r.sizes {
		if s.procs < 10_000 {
			continue
		}
		probe := summarize(cpus(s.scans["probe"])).median
		groups := summarize(cpus(s.scans["probe_groups"])).median
		out = append(out, fmt.Sprintf("process groups add ≤ 10%% to the node CPU of the scan at %d processes: in-VM medians %s without, %s with, %+.1f%%: %s",
			s.procs, ms(probe), ms(groups), 100*(groups/probe-1), verdict(groups <= 1.1*probe)))
		if len(s.groups) > 0 {
			paired := summarize(s.groups).median
			out = append(out, fmt.Sprintf("process groups add ≤ 10%% to the node CPU of the exporter's processes refresh at %d processes: median of %d paired ratios %.3f: %s",
				s.procs, len(s.groups), paired, verdict(paired <= 1.1)))
		}
	}
	worstCached, worstRSS := 0.0, 0.0
	for _, s := range r.sizes {
		worstCached = max(worstCached, summarize(durations(s.binary.cached)).median)
		worstRSS = max(worstRSS, s.binary.hwmBytes)
	}
	out = append(out, fmt.Sprintf("scrape served from cache < 5 ms: worst median %s: %s", ms(worstCached), verdict(worstCached < 0.005)))
	out = append(out, fmt.Sprintf("exporter RSS < 40 MB for one target: largest peak %s: %s", mb(worstRSS), verdict(worstRSS < 40e6)))
	if len(r.msacc.on) > 0 {
		out = append(out, fmt.Sprintf("msacc throughput cost < 1%% to stay on by default: %.2f%% (median of paired runs): %s", 100*r.msacc.cost(), verdict(r.msacc.cost() < 0.01)))
	}
	return out
}

func cpus(sc []scan) []float64 { return field(sc, func(x scan) float64 { return x.cpu.Seconds() }) }

func field(sc []scan, f func(scan) float64) []float64 {
	out := make([]float64, len(sc))
	for i, x := range sc {
		out[i] = f(x)
	}
	return out
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func failed(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d failed)", n)
}

func floats(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.4g", x)
	}
	return strings.Join(s, ", ")
}

func promtoolVerdict(sizes []sizeResult) string {
	for _, s := range sizes {
		if s.binary.promtool != "" {
			return "`" + s.binary.promtool + "`"
		}
	}
	return "silent"
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	var kb float64
	fmt.Fscanf(f, "MemTotal: %f kB", &kb)
	return fmt.Sprintf("%.0f GB", kb/1024/1024)
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
