//go:build sinkbench

// The sink's cost (make bench-sink): one real node of 10,000 processes (and
// some activity, so that every ranking is full) and
// one exporter (a normal build) scraped every 15 s, first without the
// ClickHouse sink and then with it at the default 5 s, writing to Debian's
// clickhouse-server. It reports the exporter's and the node's CPU, the
// exporter's peak resident memory, and the rows and bytes the sink writes.

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/sink/clickhouse/chtest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

func init() { buildFlags = nil }

// cpuSeconds is a process's user and system CPU time so far.
func cpuSeconds(t *testing.T, pid int) float64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime is the
	// 14th field of the line, stime the 15th, in clock ticks (100 a second).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// peakRSS is a process's VmHWM in MB.
func peakRSS(t *testing.T, pid int) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1000
		}
	}
	return 0
}

func TestSinkBench(t *testing.T) {
	seconds := 300
	if v, err := strconv.Atoi(os.Getenv("SINK_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	duration := time.Duration(seconds) * time.Second
	ch, err := chtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	node := erltest.Start(t, erltest.Options{Name: erltest.UniqueName("sinkbench")})
	// 10,000 idle processes, and enough activity that all three rankings
	// are full (30 rows a sample): 10 mailboxes of 10 to 100 messages, and
	// 20 processes that wake every 5 ms.
	node.Eval(t, `[spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 10000)],
		[begin P = spawn(fun() -> receive stop -> ok end end), [P ! {m, J} || J <- lists:seq(1, 10 * I)] end || I <- lists:seq(1, 10)],
		Tick = fun Loop() -> receive stop -> ok after 5 -> Loop() end end,
		[spawn(Tick) || _ <- lists:seq(1, 20)], ok.`)

	type result struct{ exporterCPU, nodeCPU, rss float64 }
	measure := func(args ...string) (result, string) {
		addr, cmd, _ := startExporter(t, node.Cookie, append([]string{"--erlang.node=" + node.Name}, args...)...)
		testkit.WaitFor(t, "beam_up 1", 30*time.Second, func() bool { return strings.Contains(get(addr+"/metrics"), "\nbeam_up 1") })
		pid := cmd.Process.Pid
		e0, n0 := cpuSeconds(t, pid), cpuSeconds(t, node.OSPid())
		start := time.Now()
		for time.Since(start) < duration {
			get(addr + "/metrics")
			time.Sleep(15 * time.Second)
		}
		elapsed := time.Since(start).Seconds()
		r := result{(cpuSeconds(t, pid) - e0) / elapsed, (cpuSeconds(t, node.OSPid()) - n0) / elapsed, peakRSS(t, pid)}
		metrics := get(addr + "/metrics")
		cmd.Process.Kill()
		cmd.Wait()
		return r, metrics
	}

	fmt.Printf("without the sink, scraped every 15 s for %s\n", duration)
	without, _ := measure()
	fmt.Printf("with the sink every 5 s, scraped every 15 s for %s\n", duration)
	with, metrics := measure("--sink.clickhouse.url="+ch.URL, "--sink.clickhouse.create-table")

	value := func(name string) string {
		for _, line := range strings.Split(metrics, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		return "?"
	}
	rows, _ := ch.Query("SELECT count() FROM default.beam_top_processes")
	samples, _ := ch.Query("SELECT uniqExact(timestamp) FROM default.beam_top_processes")
	ch.Query("OPTIMIZE TABLE default.beam_top_processes FINAL")
	bytes, _ := ch.Query("SELECT sum(data_compressed_bytes), sum(data_uncompressed_bytes) FROM system.parts WHERE table = 'beam_top_processes' AND active")
	n, _ := strconv.ParseFloat(rows, 64)
	k, _ := strconv.ParseFloat(samples, 64)
	compressed, _ := strconv.ParseFloat(strings.Fields(bytes + " 0")[0], 64)

	fmt.Printf("\nsink benchmark: one OTP %s node of 10,000 processes, ClickHouse %s, %s a phase\n", node.OTP, ch.Version, duration)
	fmt.Printf("  %-44s %-12s %s\n", "", "without", "with the sink")
	fmt.Printf("  %-44s %-12.4f %.4f\n", "exporter CPU (cores, mean)", without.exporterCPU, with.exporterCPU)
	fmt.Printf("  %-44s %-12.1f %.1f\n", "exporter peak RSS (MB)", without.rss, with.rss)
	fmt.Printf("  %-44s %-12.4f %.4f\n", "node CPU (cores, mean)", without.nodeCPU, with.nodeCPU)
	fmt.Printf("  rows written %s in %s samples (%.1f a sample); inserts %s; dropped %s\n", rows, samples, n/k,
		value("beam_exporter_sink_inserts_total"), value("beam_exporter_sink_rows_dropped_total"))
	fmt.Printf("  rows a day at 5 s: %.0f; compressed bytes a row (portable table, 18.16): %.1f (%s compressed/uncompressed)\n",
		n/k*86400/5, compressed/n, bytes)
}
