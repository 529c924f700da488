// Live tests of the sysmon collector: events counted under their sources, an owner left alone, nothing left behind.

package collector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

// lowThresholds make the test's processes' events certain on any machine:
// a full collection of a 2M-element list copies 32 MB, several
// milliseconds even unloaded.
func lowThresholds(cfg *erlnode.Config) {
	cfg.Session.SystemMonitor = &erlnode.SystemMonitorThresholds{
		LongGC: 2 * time.Millisecond, LongSchedule: time.Second,
		LargeHeapBytes: 8 << 20, LongMessageQueue: 1000, Names: 20,
	}
}

const sysmonProcess = erlnode.ProbeModule + "_sysmon"

func TestLiveSysmonEvents(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: true, collectors: []string{"sysmon"}, configure: lowThresholds})
		fams := l.scrape(t)
		if v := value(t, fams, "beam_scrape_collector_success", "collector", "sysmon"); v != 1 {
			t.Fatalf("the sysmon collector failed on a node with no system monitor")
		}
		value(t, fams, "beam_system_monitor_info", "owner", "beam_exporter")
		if got, want := node.Eval(t, "element(1, erlang:system_monitor()) =:= whereis("+sysmonProcess+")."), "true"; got != want {
			t.Fatalf("the node's system monitor is not the exporter's monitor process")
		}
		// One process collects a large heap again and again: long GCs;
		// another keeps a large heap that each of its collections reports.
		node.Eval(t, `spawn(fun() -> register(sysmon_gc_hog, self()),
				L = lists:seq(1, 2000000),
				(fun F() -> erlang:garbage_collect(), receive stop -> length(L) after 200 -> F() end end)() end),
			spawn(fun() -> register(sysmon_heap_grower, self()),
				(fun F(Acc) -> receive stop -> length(Acc) after 20 ->
					F(case length(Acc) < 15 of
						true -> [lists:seq(1, 100000) | Acc];
						false -> erlang:garbage_collect(), Acc
					end) end end)([]) end), ok.`)
		// A third, unregistered and started by proc_lib, is named by its
		// proc_lib label where the release has labels (27 and later); on
		// 25 the dictionary is not read, so it is proc_lib's own call.
		labelled, label := "sysmon_labelled", "proc_lib:set_label({sysmon_labelled, 1}),"
		if otp == "25" {
			labelled, label = "proc_lib:init_p/3", "" // proc_lib:spawn/1 of a fun
		}
		node.Eval(t, `P = proc_lib:spawn(fun() -> `+label+`
				L = lists:seq(1, 2000000),
				(fun F() -> erlang:garbage_collect(), receive stop -> length(L) after 200 -> F() end end)() end),
			register(sysmon_labelled_pid_holder, spawn(fun() -> receive stop -> P ! stop end end)), ok.`)
		waitFor(t, "long GCs of sysmon_gc_hog and "+labelled+", a large heap of sysmon_heap_grower", func() bool {
			fams = l.scrape(t)
			gc, _ := lookup(fams, "beam_system_monitor_events_by_source_total", "event", "long_gc", "source", "sysmon_gc_hog")
			lgc, _ := lookup(fams, "beam_system_monitor_events_by_source_total", "event", "long_gc", "source", labelled)
			heap, _ := lookup(fams, "beam_system_monitor_events_by_source_total", "event", "large_heap", "source", "sysmon_heap_grower")
			return gc > 0 && lgc > 0 && heap > 0
		})
		node.Eval(t, "sysmon_gc_hog ! stop, sysmon_heap_grower ! stop, sysmon_labelled_pid_holder ! stop, ok.")
		// The parts add up to their event's total, and the histogram holds
		// every long GC counted, none below the threshold.
		for _, event := range []string{"long_gc", "large_heap"} {
			total := value(t, fams, "beam_system_monitor_events_total", "event", event)
			var sum float64
			for _, m := range fams["beam_system_monitor_events_by_source_total"].GetMetric() {
				if m.GetLabel()[0].GetValue() == event {
					sum += m.GetCounter().GetValue()
				}
			}
			if sum != total {
				t.Errorf("%s: sources sum to %v, the total is %v", event, sum, total)
			}
		}
		h := fams["beam_system_monitor_long_gc_seconds"].GetMetric()[0].GetHistogram()
		if float64(h.GetSampleCount()) != value(t, fams, "beam_system_monitor_events_total", "event", "long_gc") {
			t.Errorf("the histogram counts %d long GCs, the counter %v", h.GetSampleCount(), value(t, fams, "beam_system_monitor_events_total", "event", "long_gc"))
		}
		if h.GetSampleSum() < 0.002*float64(h.GetSampleCount()) {
			t.Errorf("long GCs of %v s in all, below the 2 ms threshold each", h.GetSampleSum())
		}
		_, lmq := lookup(fams, "beam_system_monitor_events_total", "event", "long_message_queue")
		if lmq != (otp != "25") {
			t.Errorf("OTP %s: long_message_queue exported = %v", otp, lmq)
		}
		lintFamilies(t, fams)
	})
}

func TestLiveSysmonOwnedByAnother(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		node.Eval(t, `spawn(fun() -> register(app_sysmon, self()),
				erlang:system_monitor(self(), [{long_gc, 500}]),
				(fun F() -> receive _ -> F() end end)() end),
			ok.`)
		waitFor(t, "the application's monitor", func() bool {
			return node.Eval(t, "element(1, erlang:system_monitor()) =:= whereis(app_sysmon).") == "true"
		})
		l := connect(t, node, liveOptions{loadProbe: true, collectors: []string{"sysmon"}, configure: lowThresholds})
		for range 2 {
			fams := l.scrape(t)
			if v := value(t, fams, "beam_scrape_collector_success", "collector", "sysmon"); v != 0 {
				t.Errorf("the sysmon collector reports success %v beside another owner", v)
			}
			value(t, fams, "beam_system_monitor_info", "owner", "other")
			if _, ok := fams["beam_system_monitor_events_total"]; ok {
				t.Error("events exported from a monitor that is not the exporter's")
			}
		}
		if got := node.Eval(t, "erlang:system_monitor() =:= {whereis(app_sysmon), [{long_gc, 500}]}."); got != "true" {
			t.Errorf("the application's system monitor was changed: %s", node.Eval(t, "erlang:system_monitor()."))
		}
		l.client.Close()
		if got := node.Eval(t, "erlang:system_monitor() =:= {whereis(app_sysmon), [{long_gc, 500}]}."); got != "true" {
			t.Errorf("after the exporter left, the system monitor is %s", node.Eval(t, "erlang:system_monitor()."))
		}
	})
}

// However the exporter goes, the node's system monitor goes with it: with
// the connection dropped by the node, and with the exporter's client closed.
func TestLiveSysmonLeavesNothingBehind(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: true, collectors: []string{"sysmon"}, configure: lowThresholds})
		installed := func() {
			t.Helper()
			fams := l.scrape(t)
			if v := value(t, fams, "beam_scrape_collector_success", "collector", "sysmon"); v != 1 {
				t.Fatal("the sysmon collector failed")
			}
			value(t, fams, "beam_system_monitor_info", "owner", "beam_exporter")
		}
		released := func(how string) {
			t.Helper()
			waitFor(t, "erlang:system_monitor() to be undefined after "+how, func() bool {
				return node.Eval(t, "{erlang:system_monitor(), whereis("+sysmonProcess+")}.") == "{undefined,undefined}"
			})
		}
		installed()
		node.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s').", l.client.LocalName()))
		released("the node dropped the connection")
		installed()
		l.client.Close()
		released("the exporter closed its connection")
		if out := node.Output(); strings.Contains(out, "max_heap_size") {
			t.Errorf("the monitor process hit its heap limit:\n%s", out)
		}
	})
}

// Events faster than the monitor can take them: its mailbox is bounded. The
// monitor is suspended while 50 processes collect their 160 KB heaps in a
// loop (a large_heap event each time), so that its mailbox passes the
// overload mark; resumed, it lets the system monitor go, works off what
// is queued, and takes the monitor back 10 s later.
func TestLiveSysmonOverload(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: true, collectors: []string{"sysmon"}, configure: func(cfg *erlnode.Config) {
			lowThresholds(cfg)
			cfg.Session.SystemMonitor.LargeHeapBytes = 1 // ERTS takes at least 16384 words
		}})
		value(t, l.scrape(t), "beam_system_monitor_info", "owner", "beam_exporter")
		node.Eval(t, `Mon = whereis(`+sysmonProcess+`), erlang:suspend_process(Mon),
			Ps = [spawn(fun() -> L = lists:seq(1, 10000),
				(fun F() -> erlang:garbage_collect(), receive stop -> length(L) after 0 -> F() end end)() end)
				|| _ <- lists:seq(1, 50)],
			(fun W() -> case process_info(Mon, message_queue_len) of
				{_, Q} when Q > 20000 -> ok; _ -> timer:sleep(5), W() end end)(),
			[P ! stop || P <- Ps], erlang:resume_process(Mon), ok.`)
		testkit.WaitFor(t, "the monitor to take the system monitor back after its overload", 40*time.Second, func() bool {
			fams := l.scrape(t)
			overloads, _ := lookup(fams, "beam_system_monitor_overloads_total")
			_, ours := lookup(fams, "beam_system_monitor_info", "owner", "beam_exporter")
			return ours && overloads >= 1
		})
		fams := l.scrape(t)
		if q := value(t, fams, "beam_system_monitor_queue_length"); q > 1000 {
			t.Errorf("%v events still queued after the overload", q)
		}
		if m := value(t, fams, "beam_system_monitor_memory_bytes"); m > 1<<20 {
			t.Errorf("the monitor process holds %v bytes after its overload", m)
		}
		// Mostly large_heap; a loaded machine makes some long_gc too.
		var events float64
		for _, m := range fams["beam_system_monitor_events_total"].GetMetric() {
			events += m.GetCounter().GetValue()
		}
		if events < 20000 {
			t.Errorf("%v events counted, the monitor had more than 20,000 queued", events)
		}
	})
}
