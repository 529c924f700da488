package collector

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/units"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Captured from OTP 27: system_monitor_events/1's {ok, Map} after a session
// with long_gc 5 ms and large_heap 8 MB watched a process registered as
// gc_hog build a 3M-element list and collect it, and another take 200
// messages (long_message_queue at 100).
var sysmonCaptured = etf.Map{
	etf.Atom("owner"):              etf.Atom("beam_exporter"),
	etf.Atom("long_message_queue"): true,
	etf.Atom("memory"):             29832,
	etf.Atom("queue"):              0,
	etf.Atom("overloads"):          0,
	etf.Atom("events"): etf.Map{
		etf.Atom("large_heap"): 10, etf.Atom("long_gc"): 10, etf.Atom("long_message_queue"): 1,
	},
	etf.Atom("names"): etf.List{
		etf.Tuple{etf.Atom("large_heap"), []byte("gc_hog"), 10},
		etf.Tuple{etf.Atom("long_gc"), []byte("gc_hog"), 10},
		etf.Tuple{etf.Atom("long_message_queue"), []byte("erlang:apply/2"), 1},
	},
	etf.Atom("long_gc_bounds_ms"): etf.List{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000},
	etf.Atom("long_gc_counts"):    etf.List{0, 0, 0, 3, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	etf.Atom("long_gc_sum_ms"):    196,
	etf.Atom("thresholds"): etf.Map{
		etf.Atom("large_heap"): 8000000, etf.Atom("long_gc"): 5, etf.Atom("long_message_queue"): 100,
		etf.Atom("long_schedule"): 100, etf.Atom("names"): 20,
	},
}

func sysmonReplies(body etf.Term) map[string]etf.Term {
	return map[string]etf.Term{"probe:system_monitor_events()": etf.Tuple{etf.Atom("ok"), body}}
}

func TestSysmon(t *testing.T) {
	expectMetrics(t, sysmonCollector{}, sysmonReplies(sysmonCaptured), `
# HELP beam_system_monitor_events_by_source_total The same events by source: the stable name of the process (registered name, proc_lib label or initial call) or the driver of the port behind them; the first --collector.sysmon.top-n pairs keep their own counter, later ones count as other, and events met while the monitor was behind as unclassified. Sums to beam_system_monitor_events_total. Up to one slow tier old.
# TYPE beam_system_monitor_events_by_source_total counter
beam_system_monitor_events_by_source_total{event="large_heap",source="gc_hog"} 10
beam_system_monitor_events_by_source_total{event="long_gc",source="gc_hog"} 10
beam_system_monitor_events_by_source_total{event="long_message_queue",source="erlang:apply/2"} 1
# HELP beam_system_monitor_events_total System monitor events since the exporter's monitor started on the node, by event: long_gc, long_schedule, large_heap, busy_port, busy_dist_port and, from OTP 27, long_message_queue. Only events above the thresholds the monitor was started with. Up to one slow tier old.
# TYPE beam_system_monitor_events_total counter
beam_system_monitor_events_total{event="busy_dist_port"} 0
beam_system_monitor_events_total{event="busy_port"} 0
beam_system_monitor_events_total{event="large_heap"} 10
beam_system_monitor_events_total{event="long_gc"} 10
beam_system_monitor_events_total{event="long_message_queue"} 1
beam_system_monitor_events_total{event="long_schedule"} 0
# HELP beam_system_monitor_info Who holds the node's one system monitor (erlang:system_monitor/0): beam_exporter (an exporter session's monitor, whose counts these are), other (a process of the node's own, left alone: the sysmon collector is then unavailable) or none. Up to one slow tier old.
# TYPE beam_system_monitor_info gauge
beam_system_monitor_info{owner="beam_exporter"} 1
# HELP beam_system_monitor_long_gc_seconds Wall-clock durations of the garbage collections at or above --collector.sysmon.long-gc (the long_gc events; shorter ones are not seen). Up to one slow tier old.
# TYPE beam_system_monitor_long_gc_seconds histogram
beam_system_monitor_long_gc_seconds_bucket{le="0.005"} 0
beam_system_monitor_long_gc_seconds_bucket{le="0.01"} 3
beam_system_monitor_long_gc_seconds_bucket{le="0.02"} 6
beam_system_monitor_long_gc_seconds_bucket{le="0.05"} 10
beam_system_monitor_long_gc_seconds_bucket{le="0.1"} 10
beam_system_monitor_long_gc_seconds_bucket{le="0.2"} 10
beam_system_monitor_long_gc_seconds_bucket{le="0.5"} 10
beam_system_monitor_long_gc_seconds_bucket{le="1"} 10
beam_system_monitor_long_gc_seconds_bucket{le="2"} 10
beam_system_monitor_long_gc_seconds_bucket{le="5"} 10
beam_system_monitor_long_gc_seconds_bucket{le="10"} 10
beam_system_monitor_long_gc_seconds_bucket{le="30"} 10
beam_system_monitor_long_gc_seconds_bucket{le="+Inf"} 10
beam_system_monitor_long_gc_seconds_sum 0.196
beam_system_monitor_long_gc_seconds_count 10
# HELP beam_system_monitor_queue_length Events waiting in the exporter's monitor process's mailbox when it was read. Up to one slow tier old.
# TYPE beam_system_monitor_queue_length gauge
beam_system_monitor_queue_length 0
`, "beam_system_monitor_info", "beam_system_monitor_events_total", "beam_system_monitor_events_by_source_total",
		"beam_system_monitor_long_gc_seconds", "beam_system_monitor_queue_length")
}

// OTP 25 has no long_message_queue: its counter is not exported at all,
// rather than exported at a 0 that would claim the node watched mailboxes.
func TestSysmonWithoutLongMessageQueue(t *testing.T) {
	body := etf.Map{}
	for k, v := range sysmonCaptured {
		body[k] = v
	}
	body[etf.Atom("long_message_queue")] = false
	body[etf.Atom("events")] = etf.Map{etf.Atom("long_gc"): 10}
	body[etf.Atom("names")] = etf.List{}
	a := &collectorAdapter{c: sysmonCollector{}, node: &fakeNode{replies: sysmonReplies(body)}}
	fams := gather(t, a)
	if a.err != nil {
		t.Fatal(a.err)
	}
	if _, ok := lookup(fams, "beam_system_monitor_events_total", "event", "long_message_queue"); ok {
		t.Error("long_message_queue exported for a node without it")
	}
	if v, _ := lookup(fams, "beam_system_monitor_events_total", "event", "busy_port"); v != 0 {
		t.Errorf("busy_port = %v, want 0", v)
	}
}

// Another owner is left alone: the collector is unavailable, not failed,
// and still says who holds the monitor.
func TestSysmonOwnedByAnother(t *testing.T) {
	for _, owner := range []string{"other", "none"} {
		a := &collectorAdapter{c: sysmonCollector{}, node: &fakeNode{replies: sysmonReplies(etf.Map{etf.Atom("owner"): etf.Atom(owner)})}}
		if n := testutil.CollectAndCount(a); n != 1 {
			t.Errorf("owner %s: %d metrics, want the info alone", owner, n)
		}
		if !errors.Is(a.err, errUnavailable) {
			t.Errorf("owner %s: error %v, want unavailable", owner, a.err)
		}
	}
}

func TestParseSysmonMalformed(t *testing.T) {
	with := func(key string, v etf.Term) etf.Map {
		m := etf.Map{}
		for k, x := range sysmonCaptured {
			m[k] = x
		}
		if v == nil {
			delete(m, etf.Atom(key))
		} else {
			m[etf.Atom(key)] = v
		}
		return m
	}
	cases := map[string]etf.Term{
		"not a map":           etf.List{},
		"unknown owner":       etf.Map{etf.Atom("owner"): etf.Atom("someone")},
		"owner as text":       etf.Map{etf.Atom("owner"): []byte("other")},
		"no events":           with("events", nil),
		"negative event":      with("events", etf.Map{etf.Atom("long_gc"): -1}),
		"names not a list":    with("names", etf.Map{}),
		"name of no event":    with("names", etf.List{etf.Tuple{etf.Atom("busy_port"), []byte("x"), 1}}),
		"name not UTF-8":      with("names", etf.List{etf.Tuple{etf.Atom("long_gc"), []byte{0xff}, 1}}),
		"name twice":          with("names", etf.List{etf.Tuple{etf.Atom("long_gc"), []byte("a"), 1}, etf.Tuple{etf.Atom("long_gc"), []byte("a"), 2}}),
		"name pair":           with("names", etf.List{etf.Tuple{etf.Atom("long_gc"), []byte("a")}}),
		"counts short":        with("long_gc_counts", etf.List{0, 0}),
		"bounds not rising":   with("long_gc_bounds_ms", etf.List{1, 2, 2, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000}),
		"float count":         with("long_gc_counts", etf.List{0.5, 0, 0, 3, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
		"no thresholds":       with("thresholds", nil),
		"no sum":              with("long_gc_sum_ms", nil),
		"negative queue":      with("queue", -1),
		"no memory":           with("memory", nil),
		"no overloads":        with("overloads", nil),
		"no long_message_que": with("long_message_queue", nil),
	}
	for name, body := range cases {
		if _, err := parseSysmon(body); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestValidateSysmonFlags(t *testing.T) {
	restore := func(gc, sched time.Duration, heap units.Base2Bytes, q, n int) func() {
		old := []any{*sysmonLongGC, *sysmonLongSchedule, *sysmonLargeHeap, *sysmonLongMessageQueue, *sysmonTopN}
		*sysmonLongGC, *sysmonLongSchedule, *sysmonLargeHeap, *sysmonLongMessageQueue, *sysmonTopN = gc, sched, heap, q, n
		return func() {
			*sysmonLongGC, *sysmonLongSchedule = old[0].(time.Duration), old[1].(time.Duration)
			*sysmonLargeHeap, *sysmonLongMessageQueue, *sysmonTopN = old[2].(units.Base2Bytes), old[3].(int), old[4].(int)
		}
	}
	ok := restore(100*time.Millisecond, 100*time.Millisecond, 100*units.MiB, 10000, 20)
	if err := validateSysmonFlags(); err != nil {
		t.Errorf("the defaults are refused: %v", err)
	}
	ok()
	for _, c := range []struct {
		gc, sched time.Duration
		heap      units.Base2Bytes
		q, n      int
		want      string
	}{
		{0, time.Second, units.MiB, 10, 1, "long-gc"},
		{1500 * time.Microsecond, time.Second, units.MiB, 10, 1, "long-gc"},
		{time.Second, 30 * 24 * time.Hour, units.MiB, 10, 1, "long-schedule"},
		{time.Second, time.Second, units.KiB, 10, 1, "large-heap"},
		{time.Second, time.Second, units.MiB, 1, 1, "long-message-queue"},
		{time.Second, time.Second, units.MiB, 10, 0, "top-n"},
		{time.Second, time.Second, units.MiB, 10, 1001, "top-n"},
	} {
		undo := restore(c.gc, c.sched, c.heap, c.q, c.n)
		err := validateSysmonFlags()
		undo()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one about %s", c, err, c.want)
		}
	}
}

// The fuzz corpus's captured seed is the reply exactly as a real OTP 25 node
// encodes it: its small-integer lists arrive as strings (STRING_EXT), which
// the hand-written term above does not show.
func TestParseSysmonCapturedEncoding(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzParseSysmon", "captured"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	quoted := strings.TrimSuffix(strings.TrimPrefix(lines[len(lines)-1], "[]byte("), ")")
	data, err := strconv.Unquote(quoted)
	if err != nil {
		t.Fatal(err)
	}
	term, ok := fuzzTerm([]byte(data))
	if !ok {
		t.Fatal("the captured seed is not a term")
	}
	r, err := parseSysmon(term)
	if err != nil {
		t.Fatal(err)
	}
	if r.owner != "beam_exporter" || r.events["long_gc"] < 1 || r.gc.count != uint64(r.events["long_gc"]) {
		t.Errorf("captured reply decoded as %+v", r)
	}
	found := false
	for _, s := range r.sources {
		found = found || (s.event == "long_gc" && s.source == "gc_hog")
	}
	if !found {
		t.Errorf("no long_gc source gc_hog in %+v", r.sources)
	}
}
