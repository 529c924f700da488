// Tests of the os_memory, persistent_terms and memory-used figures against real nodes.

package collector

import (
	"fmt"
	"math"
	"os"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// vmRSS reads the node's VmRSS from the host, as an operator would.
func vmRSS(t *testing.T, pid int) float64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	rss, ok, err := parseVmRSS(status)
	if err != nil || !ok {
		t.Fatalf("no VmRSS for pid %d: %v", pid, err)
	}
	return rss
}

func TestLiveOSMemory(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{collectors: []string{"os_memory", "memory", "persistent_terms"}})
		// Some resident memory of our own, so that the figure is not all
		// the emulator's baseline.
		node.Eval(t, `Self = self(), spawn(fun() -> B = binary:copy(<<1>>, 50*1024*1024), Self ! held, receive stop -> B end end), receive held -> ok end.`)
		// erltest mounts proc in the roots of OTP 27 and 29 too, so every
		// node reads /proc/self as a node on its own host does; only a
		// machine that refuses mount(2) leaves a root without it, and there
		// the series must be absent.
		readable := node.Eval(t, `element(1, file:read_file("/proc/self/status")).`) == "ok"
		if !readable && otp == erltest.HostOTP {
			t.Fatal("the host's node cannot read /proc/self/status")
		}
		pid := node.OSPid()
		before := vmRSS(t, pid)
		fams := l.scrape(t)
		after := vmRSS(t, pid)
		if v := value(t, fams, "beam_scrape_collector_success", "collector", "os_memory"); v != 1 {
			t.Fatalf("os_memory collector success = %v", v)
		}
		got, present := lookup(fams, "beam_os_resident_memory_bytes")
		t.Logf("OTP %s: /proc readable by the node: %v; exported %.0f, /proc/%d/status %.0f and %.0f", otp, readable, got, pid, before, after)
		switch {
		case !readable && present:
			t.Errorf("the node cannot read /proc (erltest could not mount it in this root), yet beam_os_resident_memory_bytes = %v", got)
		case readable && !present:
			t.Error("the node reads /proc, yet beam_os_resident_memory_bytes is missing")
		case readable:
			if lo, hi := math.Min(before, after), math.Max(before, after); got < lo*0.98 || got > hi*1.02 {
				t.Errorf("beam_os_resident_memory_bytes = %.0f, /proc/%d/status says %.0f then %.0f", got, pid, before, after)
			}
			if total := sumOf(fams, "beam_memory_bytes"); got < total*0.9 {
				t.Errorf("resident memory %.0f well below erlang:memory(total) %.0f", got, total)
			}
		}

		for _, kind := range []string{"processes", "atom"} {
			used := value(t, fams, "beam_memory_used_bytes", "kind", kind)
			if allocated := value(t, fams, "beam_memory_bytes", "kind", kind); used <= 0 || used > allocated {
				t.Errorf("beam_memory_used_bytes{kind=%q} = %v, allocated %v", kind, used, allocated)
			}
		}

		count := value(t, fams, "beam_persistent_terms")
		memory := value(t, fams, "beam_persistent_term_memory_bytes")
		node.Eval(t, `persistent_term:put(beam_exporter_live_test, lists:seq(1, 10000)).`)
		fams = l.scrape(t)
		if v := value(t, fams, "beam_persistent_terms"); v != count+1 {
			t.Errorf("beam_persistent_terms = %v after one put, was %v", v, count)
		}
		// A list of 10,000 small integers is 20,000 words.
		if d := value(t, fams, "beam_persistent_term_memory_bytes") - memory; d < 20000*8 {
			t.Errorf("beam_persistent_term_memory_bytes rose by %v after storing a 160 kB term", d)
		}
	})
}

// sumOf sums the samples of a gauge or counter family.
func sumOf(fams map[string]*dto.MetricFamily, name string) float64 {
	var sum float64
	for _, m := range fams[name].GetMetric() {
		sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return sum
}
