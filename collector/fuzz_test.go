// Fuzz targets for the decoders: any reply the node could send fails one
// collector with an error, never panics, and what decodes keeps its promises.
//
// Each input is a term as term_to_binary/1 encodes it (version byte 131
// first), decoded by ergo as the exporter's connection decodes replies. The
// seed corpus under testdata/fuzz is regenerated from a real node with
// `go test -tags fuzzcorpus -run TestWriteFuzzCorpus ./collector`.

package collector

import (
	"context"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// fuzzTerm decodes one fuzz input, or reports that it is not a term. Inputs
// CheckTerm refuses are skipped: ergo would allocate what their headers
// claim, and the runtime's out-of-memory death is not a decoder bug.
func fuzzTerm(data []byte) (etf.Term, bool) {
	if len(data) == 0 || data[0] != 131 {
		return nil, false
	}
	if _, err := erlnode.CheckTerm(data[1:]); err != nil {
		return nil, false
	}
	term, _, err := etf.Decode(data[1:], nil, etf.DecodeOptions{FlagBigPidRef: true})
	if err != nil {
		return nil, false
	}
	return term, true
}

// checkCount fails unless v could be a count, a size or a duration.
func checkCount(t *testing.T, what string, v float64) {
	t.Helper()
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		t.Fatalf("%s decoded to %v, not a finite non-negative number", what, v)
	}
}

func FuzzParseMemory(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		kinds, err := parseMemory(term)
		if err != nil {
			return
		}
		if len(kinds) != len(memoryKinds)+1 {
			t.Fatalf("got %d kinds, want %d", len(kinds), len(memoryKinds)+1)
		}
		for k, v := range kinds {
			checkCount(t, k, v)
		}
	})
}

func FuzzParseWallTime(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		sample, err := parseWallTime(term)
		if err != nil {
			return
		}
		for _, w := range sample {
			checkCount(t, "active time", w.active)
			checkCount(t, "total time", w.total)
		}
		// Compared with a zero sample and with itself, every ratio is a ratio.
		counts := schedulerCounts{normal: 8, normalOnline: 8, dirtyCPU: 8, dirtyCPUOnline: 8, dirtyIO: 10}
		zero := map[int]wallTime{}
		for id := range sample {
			zero[id] = wallTime{}
		}
		for _, r := range append(schedulerRatios(zero, sample, counts), schedulerRatios(sample, sample, counts)...) {
			if !(r.ratio >= 0 && r.ratio <= 1) {
				t.Fatalf("scheduler %d: ratio %v outside [0, 1]", r.id, r.ratio)
			}
		}
	})
}

func FuzzParseMSAcc(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		sums, err := parseMSAcc(term)
		if err != nil {
			return
		}
		for k, v := range sums {
			checkCount(t, k.threadType+"/"+k.state, v)
		}
	})
}

// FuzzStatistics covers the small statistics/1 answers: {A, B} pairs,
// statistics(io) and statistics(garbage_collection).
func FuzzStatistics(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		if a, b, err := pair(term); err == nil {
			checkCount(t, "first of pair", a)
			checkCount(t, "second of pair", b)
		}
		if in, out, err := parseIO(term); err == nil {
			checkCount(t, "input", in)
			checkCount(t, "output", out)
		}
		if runs, words, err := parseGC(term); err == nil {
			checkCount(t, "runs", runs)
			checkCount(t, "words", words)
		}
	})
}

func FuzzParseRunQueues(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, normal int) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		normal = min(max(normal, 0), 1024) // system_info(schedulers) is 1..1024
		queues, err := parseRunQueues(term, normal)
		if err != nil {
			return
		}
		for typ, v := range queues {
			if !slices.Contains(schedulerTypes, typ) {
				t.Fatalf("unknown scheduler type %q", typ)
			}
			checkCount(t, typ, v)
		}
	})
}

// FuzzParseRanking covers the probe's replies to ets_tables and lock_counters:
// {ok, [{Name, V1, V2}]}, at most limit entries.
func FuzzParseRanking(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, width, limit int) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		width, limit = min(max(width, 0), 8), min(max(limit, 1), 2*maxTopN)
		body, err := okReply(term)
		if err != nil {
			return
		}
		entries, err := parseRanking(body, width, limit)
		if err != nil {
			return
		}
		if len(entries) > limit {
			t.Fatalf("%d entries, more than the limit %d", len(entries), limit)
		}
		for _, e := range entries {
			if len(e.values) != width {
				t.Fatalf("entry %q has %d values, want %d", e.name, len(e.values), width)
			}
			if !utf8.ValidString(e.name) {
				t.Fatalf("entry %q: a name that is not UTF-8 can be no label value", e.name)
			}
			for _, v := range e.values {
				checkCount(t, e.name, v)
			}
		}
	})
}

func FuzzParseProcessRankings(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		const topN, maxGroups = 10, 20
		r, err := parseProcessRankings(term, topN, maxGroups)
		if err != nil {
			return
		}
		if r.window < 0 {
			t.Fatalf("negative window %v", r.window)
		}
		for _, l := range [][]rankedProcess{r.memory, r.messageQueue, r.reductions} {
			if len(l) > topN {
				t.Fatalf("%d entries, more than top-n %d", len(l), topN)
			}
			for _, e := range l {
				if !pidText.MatchString(e.pid) {
					t.Fatalf("ranked pid %q", e.pid)
				}
				checkCount(t, e.pid, e.value)
				if r.window > 0 {
					checkCount(t, e.pid+" per second", e.value/r.window.Seconds())
				}
			}
		}
		if len(r.details) > 3*topN {
			t.Fatalf("%d details, more than three rankings of %d", len(r.details), topN)
		}
		for pid, d := range r.details {
			if !pidText.MatchString(pid) {
				t.Fatalf("described pid %q", pid)
			}
			for _, v := range []float64{d.memory, d.messageQueueLength, d.reductions} {
				checkCount(t, pid, v)
			}
		}
		if len(r.groups) > maxGroups {
			t.Fatalf("%d groups, more than %d", len(r.groups), maxGroups)
		}
		var in, out ProcessGroup
		names := map[string]bool{}
		for _, g := range append(r.groups, r.groupsOther) {
			for _, v := range []float64{g.Processes, g.MemoryBytes, g.MessageQueue, g.ReductionsPerSecond} {
				checkCount(t, g.Group, v)
			}
			in.add(g)
		}
		for _, g := range mergeGroups([][]ProcessGroup{r.groups}, []ProcessGroup{r.groupsOther}, 3) {
			if names[g.Group] {
				t.Fatalf("group %q twice", g.Group)
			}
			names[g.Group] = true
			if _, err := prometheus.NewConstMetric(processGroupMemoryDesc, prometheus.GaugeValue, g.MemoryBytes, g.Group); err != nil {
				t.Fatalf("group %+v makes no metric: %v", g, err)
			}
			out.add(g)
		}
		if in.Processes != out.Processes || in.MemoryBytes != out.MemoryBytes {
			t.Fatalf("merged groups sum to %+v, the reply to %+v", out, in)
		}
		snap := r.snapshot(time.Unix(0, 0))
		for _, l := range [][]TopProcess{snap.Memory, snap.MessageQueue, snap.Reductions} {
			for i, p := range l {
				if p.Rank != i+1 {
					t.Fatalf("snapshot row %+v", p)
				}
				checkCount(t, p.Pid, p.Value)
				// The collector labels its metrics with the name.
				if _, err := prometheus.NewConstMetric(processMemoryDesc, prometheus.GaugeValue, p.Value, strconv.Itoa(p.Rank), p.Name); err != nil {
					t.Fatalf("row %+v makes no metric: %v", p, err)
				}
			}
		}
	})
}

// anyReplyNode answers every call with the same term.
type anyReplyNode struct{ reply etf.Term }

func (n anyReplyNode) Call(context.Context, string, string, ...etf.Term) (etf.Term, error) {
	return n.reply, nil
}

func (n anyReplyNode) ProbeCall(context.Context, string, ...etf.Term) (etf.Term, error) {
	return n.reply, nil
}

func (anyReplyNode) EnsureSession(context.Context) error { return nil }
func (anyReplyNode) Generation() uint64                  { return 1 }

// FuzzCollectors gives every collector the same reply to every call, which
// reaches the decoding done inline in Update (system_info answers, the
// lock-counting switch, the node's versions and start time).
func FuzzCollectors(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		for _, name := range Names() {
			// The scheduler collector waits between two samples; a short
			// deadline ends the wait if a reply ever gets that far.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			ch := make(chan prometheus.Metric, 4096)
			err := registry[name].factory().Update(ctx, anyReplyNode{term}, ch)
			cancel()
			close(ch)
			for m := range ch {
				var pb dto.Metric
				if werr := m.Write(&pb); werr != nil {
					t.Fatalf("%s: %v", name, werr)
				}
				v := pb.GetGauge().GetValue() + pb.GetCounter().GetValue()
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%s emitted %v (Update error: %v)", name, v, err)
				}
			}
		}
	})
}

// FuzzParseAllocatorSizes covers system_info(alloc_util_allocators) and
// system_info({allocator_sizes, A}).
func FuzzParseAllocatorSizes(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		if names, err := parseAllocatorNames(term); err == nil {
			if len(names) > maxAllocators {
				t.Fatalf("%d allocators, more than %d", len(names), maxAllocators)
			}
			for _, n := range names {
				if !utf8.ValidString(n) {
					t.Fatalf("allocator %q is no label value", n)
				}
			}
		}
		check := func(s allocatorSizes) {
			for what, v := range map[string]float64{"mbcs carriers": s.mbcsCarriers, "mbcs blocks": s.mbcsBlocks,
				"sbcs carriers": s.sbcsCarriers, "sbcs blocks": s.sbcsBlocks} {
				checkCount(t, what, v)
			}
		}
		if s, _, err := parseAllocatorSizes(term); err == nil {
			check(s)
		}
		// The one call the collector makes, as OTP 25 to 29 answer it.
		if all, err := parseAllAllocatorSizes(term, otpAllocators); err == nil {
			for name, s := range all {
				if !slices.Contains(otpAllocators, name) {
					t.Fatalf("allocator %q was not asked for", name)
				}
				check(s)
			}
		}
	})
}

// otpAllocators is system_info(alloc_util_allocators) on OTP 25, 27 and 29.
var otpAllocators = []string{"temp_alloc", "sl_alloc", "std_alloc", "ll_alloc", "eheap_alloc",
	"ets_alloc", "fix_alloc", "literal_alloc", "binary_alloc", "driver_alloc"}

// FuzzParseProcStatus covers file:read_file("/proc/self/status") as the
// os_memory collector reads it.
func FuzzParseProcStatus(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		if rss, _, err := parseProcStatusReply(term); err == nil {
			checkCount(t, "VmRSS", rss)
		}
	})
}

// FuzzParsePersistentTermInfo covers persistent_term:info().
func FuzzParsePersistentTermInfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		if count, memory, err := parsePersistentTermInfo(term); err == nil {
			checkCount(t, "count", count)
			checkCount(t, "memory", memory)
		}
	})
}

func FuzzParseDist(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		r, err := parseDist(term, "beam_exporter@vm")
		if err != nil {
			return
		}
		checkCount(t, "busy limit", r.busyLimit)
		seen := map[string]bool{}
		for _, l := range r.links {
			if l.peer == "beam_exporter@vm" || seen[l.peer] || !utf8.ValidString(l.peer) {
				t.Fatalf("link peer %q (seen before: %v)", l.peer, seen[l.peer])
			}
			seen[l.peer] = true
			for _, v := range []float64{l.recvOct, l.recvCnt, l.sendOct, l.sendCnt, l.pending} {
				checkCount(t, l.peer, v)
			}
		}
	})
}

func FuzzParseDistEvents(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		e, err := parseDistEvents(term)
		if err != nil {
			return
		}
		for peer, v := range e.ups {
			if !utf8.ValidString(peer) {
				t.Fatalf("peer %q is not UTF-8", peer)
			}
			checkCount(t, peer, v)
		}
		for reason, v := range e.downs {
			if !slices.Contains(distDownReasons, reason) {
				t.Fatalf("reason %q is not one of %v", reason, distDownReasons)
			}
			checkCount(t, reason, v)
		}
	})
}

func FuzzParseMnesia(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		r, err := parseMnesia(term, 3)
		if err != nil {
			return
		}
		if len(r.tables) > 3 {
			t.Fatalf("%d tables, more than top-n 3", len(r.tables))
		}
		for _, v := range []float64{r.heldLocks, r.lockQueue, r.commits, r.failures, r.restarts, r.logWrites} {
			checkCount(t, "figure", v)
		}
		for i, tb := range r.tables {
			checkCount(t, tb.name, tb.memory)
			checkCount(t, tb.name, tb.records)
			if i > 0 && tb.memory > r.tables[i-1].memory {
				t.Fatalf("tables out of order: %+v", r.tables)
			}
		}
	})
}

func FuzzParseSysmon(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		term, ok := fuzzTerm(data)
		if !ok {
			return
		}
		r, err := parseSysmon(term)
		if err != nil {
			return
		}
		for e, v := range r.events {
			checkCount(t, e, v)
		}
		if len(r.sources) > maxTopN+2*len(sysmonEvents) {
			t.Fatalf("%d sources, more than the monitor keeps", len(r.sources))
		}
		for _, s := range r.sources {
			checkCount(t, s.source, s.count)
			if !utf8.ValidString(s.source) {
				t.Fatalf("source %q is not UTF-8", s.source)
			}
		}
		checkCount(t, "queue", r.queue)
		checkCount(t, "memory", r.memory)
		checkCount(t, "long gc sum", r.gc.sum)
		for le, n := range r.gc.buckets {
			if n > r.gc.count || math.IsNaN(le) || math.IsInf(le, 0) {
				t.Fatalf("bucket %v holds %d of %d", le, n, r.gc.count)
			}
		}
		// A valid reply makes valid metrics.
		ch := make(chan prometheus.Metric, 64)
		go func() {
			defer close(ch)
			_ = sysmonCollector{}.Update(context.Background(), &fakeNode{replies: sysmonReplies(term)}, ch)
		}()
		for range ch {
		}
	})
}
