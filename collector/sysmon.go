// The sysmon collector: long GCs, long schedules, large heaps, busy ports and long mailboxes, from the node's system monitor.

package collector

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

var (
	sysmonLongGC = kingpin.Flag("collector.sysmon.long-gc",
		"A garbage collection of one process taking at least this long (wall clock, whole milliseconds) is a long_gc event.").Default("100ms").Duration()
	sysmonLongSchedule = kingpin.Flag("collector.sysmon.long-schedule",
		"A process or port running this long without being scheduled out (whole milliseconds) is a long_schedule event.").Default("100ms").Duration()
	sysmonLargeHeap = kingpin.Flag("collector.sysmon.large-heap",
		"A garbage collection that leaves a process's heaps at least this large is a large_heap event (bytes; the node counts it in words).").Default("100MiB").Bytes()
	sysmonLongMessageQueue = kingpin.Flag("collector.sysmon.long-message-queue",
		"A mailbox growing to this many messages is a long_message_queue event (OTP 27 and later); the next needs it to fall below half first.").Default("10000").Int()
	sysmonTopN = kingpin.Flag("collector.sysmon.top-n",
		"How many {event, source} pairs keep a counter of their own, first seen first served; later sources count as other (1-1000).").Default("20").Int()
)

// Opt-in: it holds the node's one system monitor, which an application may
// want for itself.
func init() {
	register("sysmon", false, TierSlow, func() Collector { return sysmonCollector{} }).
		validatedBy(validateSysmonFlags).
		needs(func() erlnode.SessionOptions {
			return erlnode.SessionOptions{SystemMonitor: &erlnode.SystemMonitorThresholds{
				LongGC: *sysmonLongGC, LongSchedule: *sysmonLongSchedule,
				LargeHeapBytes: uint64(*sysmonLargeHeap), LongMessageQueue: *sysmonLongMessageQueue,
				Names: *sysmonTopN,
			}}
		})
}

// maxMonitorMillis bounds the times and the mailbox length given to the
// probe (24 days of milliseconds), which checks the same bound.
const maxMonitorMillis = math.MaxInt32

// validateSysmonFlags checks the collector's flags before anything starts.
func validateSysmonFlags() error {
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"long-gc", *sysmonLongGC}, {"long-schedule", *sysmonLongSchedule}} {
		if d.value < time.Millisecond || d.value%time.Millisecond != 0 || d.value.Milliseconds() > maxMonitorMillis {
			return fmt.Errorf("--collector.sysmon.%s must be a whole number of milliseconds from 1ms to %dms, got %s", d.flag, maxMonitorMillis, d.value)
		}
	}
	if *sysmonLargeHeap < units.MiB || *sysmonLargeHeap > 1<<48 {
		return fmt.Errorf("--collector.sysmon.large-heap must be within 1MiB-256TiB, got %s", *sysmonLargeHeap)
	}
	if *sysmonLongMessageQueue < 2 || *sysmonLongMessageQueue > maxMonitorMillis {
		return fmt.Errorf("--collector.sysmon.long-message-queue must be within 2-%d, got %d", maxMonitorMillis, *sysmonLongMessageQueue)
	}
	if *sysmonTopN < 1 || *sysmonTopN > maxTopN {
		return fmt.Errorf("--collector.sysmon.top-n must be within 1-%d, got %d", maxTopN, *sysmonTopN)
	}
	return nil
}

var (
	sysmonInfoDesc = prometheus.NewDesc(namespace+"_system_monitor_info",
		"Who holds the node's one system monitor (erlang:system_monitor/0): beam_exporter (an exporter session's monitor, whose counts these are), other (a process of the node's own, left alone: the sysmon collector is then unavailable) or none. Up to one slow tier old.",
		[]string{"owner"}, nil)
	sysmonEventsDesc = prometheus.NewDesc(namespace+"_system_monitor_events_total",
		"System monitor events since the exporter's monitor started on the node, by event: long_gc, long_schedule, large_heap, busy_port, busy_dist_port and, from OTP 27, long_message_queue. Only events above the thresholds the monitor was started with. Up to one slow tier old.",
		[]string{"event"}, nil)
	sysmonSourceEventsDesc = prometheus.NewDesc(namespace+"_system_monitor_events_by_source_total",
		"The same events by source: the stable name of the process (registered name, proc_lib label or initial call) or the driver of the port behind them; the first --collector.sysmon.top-n pairs keep their own counter, later ones count as other, and events met while the monitor was behind as unclassified. Sums to beam_system_monitor_events_total. Up to one slow tier old.",
		[]string{"event", "source"}, nil)
	sysmonLongGCDesc = prometheus.NewDesc(namespace+"_system_monitor_long_gc_seconds",
		"Wall-clock durations of the garbage collections at or above --collector.sysmon.long-gc (the long_gc events; shorter ones are not seen). Up to one slow tier old.",
		nil, nil)
	sysmonOverloadsDesc = prometheus.NewDesc(namespace+"_system_monitor_overloads_total",
		"Times the exporter's monitor process found 10,000 events waiting and let the system monitor go for 10 s, to bound its mailbox; events in that time are not seen. Up to one slow tier old.", nil, nil)
	sysmonQueueDesc = prometheus.NewDesc(namespace+"_system_monitor_queue_length",
		"Events waiting in the exporter's monitor process's mailbox when it was read. Up to one slow tier old.", nil, nil)
	sysmonMemoryDesc = prometheus.NewDesc(namespace+"_system_monitor_memory_bytes",
		"Memory of the exporter's monitor process (erlang:process_info(P, memory)); its mailbox is kept off heap and counted here only as far as ERTS does. Up to one slow tier old.", nil, nil)
)

// sysmonEvents are the events the probe asks for; long_message_queue only
// where the node has it.
var sysmonEvents = []string{"long_gc", "long_schedule", "large_heap", "busy_port", "busy_dist_port", "long_message_queue"}

type sysmonCollector struct{}

func (sysmonCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	// The session owns the monitor; it starts it when it starts.
	if err := node.EnsureSession(ctx); err != nil {
		return probeError("starting the probe session", err)
	}
	reply, err := node.ProbeCall(ctx, "system_monitor_events")
	if err != nil {
		return probeError("reading the system monitor", err)
	}
	body, err := okReply(reply)
	if err != nil {
		return fmt.Errorf("reading the system monitor: %w", err)
	}
	r, err := parseSysmon(body)
	if err != nil {
		return fmt.Errorf("reading the system monitor: %w", err)
	}
	ch <- prometheus.MustNewConstMetric(sysmonInfoDesc, prometheus.GaugeValue, 1, r.owner)
	switch r.owner {
	case "other":
		return fmt.Errorf("system monitor: %w: another process holds the node's system monitor, and the exporter leaves it alone", errUnavailable)
	case "none":
		return fmt.Errorf("system monitor: %w: no system monitor is installed (the session has not installed it yet)", errUnavailable)
	}
	for _, e := range sysmonEvents {
		if e == "long_message_queue" && !r.longMessageQueue {
			continue
		}
		ch <- prometheus.MustNewConstMetric(sysmonEventsDesc, prometheus.CounterValue, r.events[e], e)
	}
	for _, s := range r.sources {
		ch <- prometheus.MustNewConstMetric(sysmonSourceEventsDesc, prometheus.CounterValue, s.count, s.event, s.source)
	}
	ch <- prometheus.MustNewConstHistogram(sysmonLongGCDesc, r.gc.count, r.gc.sum, r.gc.buckets)
	ch <- prometheus.MustNewConstMetric(sysmonOverloadsDesc, prometheus.CounterValue, r.overloads)
	ch <- prometheus.MustNewConstMetric(sysmonQueueDesc, prometheus.GaugeValue, r.queue)
	ch <- prometheus.MustNewConstMetric(sysmonMemoryDesc, prometheus.GaugeValue, r.memory)
	return nil
}

type sysmonSource struct {
	event, source string
	count         float64
}

// sysmonHistogram is a const histogram's parts: cumulative counts by upper
// bound in seconds.
type sysmonHistogram struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64
}

type sysmonReport struct {
	owner            string // beam_exporter, other or none
	events           map[string]float64
	sources          []sysmonSource // by event, then source
	gc               sysmonHistogram
	longMessageQueue bool
	overloads        float64
	queue, memory    float64
}

// parseSysmon decodes system_monitor_events/1's map. Only beam_exporter's
// carries counts. The long GC buckets below the long_gc threshold in force
// are left out: no event can fall in them.
func parseSysmon(t etf.Term) (sysmonReport, error) {
	var r sysmonReport
	m, err := erlnode.Map(t)
	if err != nil {
		return r, err
	}
	owner, err := erlnode.Field(m, "owner")
	if err != nil {
		return r, err
	}
	if r.owner, err = erlnode.Atom(owner); err != nil {
		return r, fmt.Errorf("owner: %w", err)
	}
	switch r.owner {
	case "none", "other":
		return r, nil
	case "beam_exporter":
	default:
		return r, fmt.Errorf("owner %q", r.owner)
	}
	field := func(key string) (etf.Term, error) { return erlnode.Field(m, key) }

	events, err := field("events")
	if err != nil {
		return r, err
	}
	em, err := erlnode.Map(events)
	if err != nil {
		return r, fmt.Errorf("events: %w", err)
	}
	r.events = map[string]float64{}
	for _, e := range sysmonEvents {
		if v, ok := em[e]; ok {
			if r.events[e], err = erlnode.NonNegative(v); err != nil {
				return r, fmt.Errorf("events %s: %w", e, err)
			}
		}
	}

	names, err := field("names")
	if err != nil {
		return r, err
	}
	nl, err := erlnode.List(names)
	if err != nil {
		return r, fmt.Errorf("names: %w", err)
	}
	if len(nl) > maxTopN+2*len(sysmonEvents) {
		return r, fmt.Errorf("names: %d entries, more than the monitor keeps", len(nl))
	}
	seen := map[[2]string]bool{}
	for _, n := range nl {
		tup, err := erlnode.Tuple(n, 3)
		if err != nil {
			return r, fmt.Errorf("names: %w", err)
		}
		var s sysmonSource
		if s.event, err = erlnode.Atom(tup[0]); err != nil {
			return r, fmt.Errorf("names event: %w", err)
		}
		if _, known := em[s.event]; !known {
			return r, fmt.Errorf("names: event %q has no count", s.event)
		}
		if s.source, err = erlnode.Text(tup[1]); err != nil {
			return r, fmt.Errorf("names source: %w", err)
		}
		if s.count, err = erlnode.NonNegative(tup[2]); err != nil {
			return r, fmt.Errorf("names count: %w", err)
		}
		key := [2]string{s.event, s.source}
		if seen[key] {
			return r, fmt.Errorf("names: %s %q twice", s.event, s.source)
		}
		seen[key] = true
		r.sources = append(r.sources, s)
	}
	sort.Slice(r.sources, func(i, j int) bool {
		if r.sources[i].event != r.sources[j].event {
			return r.sources[i].event < r.sources[j].event
		}
		return r.sources[i].source < r.sources[j].source
	})

	if r.gc, err = parseSysmonGC(m); err != nil {
		return r, err
	}
	lmq, err := field("long_message_queue")
	if err != nil {
		return r, err
	}
	r.longMessageQueue = erlnode.IsTrue(lmq)
	for key, dst := range map[string]*float64{"overloads": &r.overloads, "queue": &r.queue, "memory": &r.memory} {
		v, err := field(key)
		if err != nil {
			return r, err
		}
		if *dst, err = erlnode.NonNegative(v); err != nil {
			return r, fmt.Errorf("%s: %w", key, err)
		}
	}
	return r, nil
}

// parseSysmonGC turns the monitor's per-bucket counts (milliseconds, the
// last above every bound) into a cumulative histogram in seconds.
func parseSysmonGC(m map[string]etf.Term) (sysmonHistogram, error) {
	h := sysmonHistogram{buckets: map[float64]uint64{}}
	get := func(key string) (etf.List, error) {
		v, err := erlnode.Field(m, key)
		if err != nil {
			return nil, err
		}
		l, err := erlnode.List(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return l, nil
	}
	bounds, err := get("long_gc_bounds_ms")
	if err != nil {
		return h, err
	}
	counts, err := get("long_gc_counts")
	if err != nil {
		return h, err
	}
	if len(bounds) == 0 || len(bounds) > 64 || len(counts) != len(bounds)+1 {
		return h, fmt.Errorf("long gc histogram: %d bounds and %d counts", len(bounds), len(counts))
	}
	thresholds, err := erlnode.Field(m, "thresholds")
	if err != nil {
		return h, err
	}
	tm, err := erlnode.Map(thresholds)
	if err != nil {
		return h, fmt.Errorf("thresholds: %w", err)
	}
	lg, err := erlnode.Field(tm, "long_gc")
	if err != nil {
		return h, fmt.Errorf("thresholds: %w", err)
	}
	threshold, err := erlnode.NonNegative(lg)
	if err != nil {
		return h, fmt.Errorf("thresholds long_gc: %w", err)
	}
	var cumulative uint64
	previous := -1.0
	for i, c := range counts {
		n, err := erlnode.NonNegative(c)
		if err != nil || n > 1<<53 {
			return h, fmt.Errorf("long gc count %d: not a count", i)
		}
		cumulative += uint64(n)
		if i == len(bounds) {
			break
		}
		bound, err := erlnode.NonNegative(bounds[i])
		if err != nil || bound <= previous {
			return h, fmt.Errorf("long gc bound %d: not increasing", i)
		}
		previous = bound
		if bound >= threshold {
			h.buckets[bound/1000] = cumulative
		}
	}
	h.count = cumulative
	sum, err := erlnode.Field(m, "long_gc_sum_ms")
	if err != nil {
		return h, err
	}
	ms, err := erlnode.NonNegative(sum)
	if err != nil {
		return h, fmt.Errorf("long_gc_sum_ms: %w", err)
	}
	h.sum = ms / 1000
	return h, nil
}
