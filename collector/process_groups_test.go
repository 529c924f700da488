package collector

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// capturedGroups is groups and groups_other as an OTP 27 node answered
// top_processes(10, 20, 0, 1, 5, D) with 5,000 workers of g:w/0.
var capturedGroups = etf.List{
	etf.Tuple{[]byte("g:w/0"), 5000, 13560000, 0, 0},
	etf.Tuple{[]byte("code_server"), 1, 196928, 0, 0},
	etf.Tuple{[]byte("erlang:apply/2"), 5, 188396, 0, 0},
	etf.Tuple{[]byte("kernel_sup"), 1, 42992, 0, 0},
	etf.Tuple{[]byte("application_controller"), 1, 21720, 0, 0},
}
var capturedOther = etf.Tuple{33, 170184, 1, 0}

func TestParseProcessGroups(t *testing.T) {
	for name, tc := range map[string]struct {
		groups, other etf.Term
		limit         int
		want          []ProcessGroup
		wantOther     ProcessGroup
		err           string
	}{
		"captured": {groups: capturedGroups, other: capturedOther, limit: 5,
			want: []ProcessGroup{
				{Group: "g:w/0", Processes: 5000, MemoryBytes: 13560000},
				{Group: "code_server", Processes: 1, MemoryBytes: 196928},
				{Group: "erlang:apply/2", Processes: 5, MemoryBytes: 188396},
				{Group: "kernel_sup", Processes: 1, MemoryBytes: 42992},
				{Group: "application_controller", Processes: 1, MemoryBytes: 21720},
			},
			wantOther: ProcessGroup{Group: "other", Processes: 33, MemoryBytes: 170184, MessageQueue: 1}},
		"no groups asked": {groups: etf.List{}, other: etf.Tuple{0, 0, 0, 0}, limit: 0,
			want: []ProcessGroup{}, wantOther: ProcessGroup{Group: "other"}},
		"busy group": {groups: etf.List{etf.Tuple{[]byte("rex"), 1, 100, 3, 5400}}, other: etf.Tuple{0, 0, 0, 0}, limit: 1,
			want: []ProcessGroup{{Group: "rex", Processes: 1, MemoryBytes: 100, MessageQueue: 3, ReductionsPerSecond: 5400}}, wantOther: ProcessGroup{Group: "other"}},
		"more than asked": {groups: capturedGroups, other: capturedOther, limit: 4, err: "at most 4"},
		"twice": {groups: etf.List{etf.Tuple{[]byte("a"), 1, 1, 0, 0}, etf.Tuple{[]byte("a"), 1, 1, 0, 0}},
			other: capturedOther, limit: 5, err: "twice"},
		"negative":    {groups: etf.List{etf.Tuple{[]byte("a"), 1, -1, 0, 0}}, other: capturedOther, limit: 5, err: "entry 1"},
		"short entry": {groups: etf.List{etf.Tuple{[]byte("a"), 1, 1, 0}}, other: capturedOther, limit: 5, err: "entry 1"},
		"other short": {groups: etf.List{}, other: etf.Tuple{0, 0, 0}, limit: 5, err: "other"},
		"other list":  {groups: etf.List{}, other: etf.List{0, 0, 0, 0}, limit: 5, err: "other"},
		"not utf8":    {groups: etf.List{etf.Tuple{[]byte{255, 254}, 1, 1, 0, 0}}, other: capturedOther, limit: 5, err: "name"},
	} {
		t.Run(name, func(t *testing.T) {
			got, other, err := parseProcessGroups(tc.groups, tc.other, tc.limit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || other != tc.wantOther {
				t.Fatalf("got %+v, other %+v\nwant %+v, other %+v", got, other, tc.want, tc.wantOther)
			}
		})
	}
}

func TestMergeGroups(t *testing.T) {
	g := func(name string, procs, mem float64) ProcessGroup {
		return ProcessGroup{Group: name, Processes: procs, MemoryBytes: mem, MessageQueue: 1, ReductionsPerSecond: 10}
	}
	bySlice := [][]ProcessGroup{
		{g("worker", 300, 3000), g("rex", 1, 500), g("other", 1, 7)}, // a process registered as other
		{g("worker", 200, 2000), g("conn", 50, 2600)},
		nil, // a slice not read yet
	}
	others := []ProcessGroup{g("other", 10, 100), g("other", 5, 50), {}}
	got := mergeGroups(bySlice, others, 2)
	want := []ProcessGroup{
		{Group: "worker", Processes: 500, MemoryBytes: 5000, MessageQueue: 2, ReductionsPerSecond: 20},
		{Group: "conn", Processes: 50, MemoryBytes: 2600, MessageQueue: 1, ReductionsPerSecond: 10},
		{Group: "other", Processes: 17, MemoryBytes: 657, MessageQueue: 4, ReductionsPerSecond: 40},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Nothing to merge still gives "other", so that the series stays.
	if got := mergeGroups(nil, nil, 20); len(got) != 1 || got[0] != (ProcessGroup{Group: "other"}) {
		t.Fatalf("empty merge: %+v", got)
	}
}

func TestProbeGroups(t *testing.T) {
	for _, tc := range []struct{ topK, slices, want int }{{0, 1, 0}, {0, 5, 0}, {20, 1, 20}, {20, 2, maxProbeGroups}} {
		if got := probeGroups(tc.topK, tc.slices); got != tc.want {
			t.Errorf("probeGroups(%d, %d) = %d, want %d", tc.topK, tc.slices, got, tc.want)
		}
	}
}

func TestValidateProcessGroupsFlags(t *testing.T) {
	old := *processGroupsTopK
	t.Cleanup(func() { *processGroupsTopK = old })
	for k, ok := range map[int]bool{1: true, 20: true, 1000: true, 0: false, -1: false, 1001: false} {
		*processGroupsTopK = k
		err := validateProcessGroupsFlags()
		if (err == nil) != ok {
			t.Errorf("top-k %d: %v", k, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--collector.process_groups.top-k must be within 1-1000") {
			t.Errorf("top-k %d: unclear error %v", k, err)
		}
	}
}

// process_groups reads the processes collector's scan: one probe call
// serves both, and asks for the groups.
func TestProcessGroups(t *testing.T) {
	reply := topReply(top("<0.50.0>", 155528), etf.List{}, etf.List{}, described("<0.50.0>", "code_server"), 500000)
	reply.(etf.Tuple)[1].(etf.Map)[etf.Atom("groups")] = capturedGroups
	reply.(etf.Tuple)[1].(etf.Map)[etf.Atom("groups_other")] = capturedOther
	n := &fakeTarget{fakeNode: fakeNode{replies: map[string]etf.Term{
		"erlang:system_info(process_count)": 47,
		"probe:top_processes(10,20,0,1,20)": reply,
	}}}
	n.up.Store(true)
	e := newTestExporter(n, time.Minute, map[string]Collector{"processes": &processesCollector{}, "process_groups": &processGroupsCollector{}})
	e.shareScan()
	want := `
# HELP beam_process_group_processes Processes in the group, as the processes collector's scan read them. Up to one slow tier old (per 100,000 processes, as beam_process_group_memory_bytes).
# TYPE beam_process_group_processes gauge
beam_process_group_processes{group="application_controller"} 1
beam_process_group_processes{group="code_server"} 1
beam_process_group_processes{group="erlang:apply/2"} 5
beam_process_group_processes{group="g:w/0"} 5000
beam_process_group_processes{group="kernel_sup"} 1
beam_process_group_processes{group="other"} 33
# HELP beam_process_group_message_queue_length Messages waiting in the mailboxes of the group's processes, summed. Up to one slow tier old (per 100,000 processes, as beam_process_group_memory_bytes).
# TYPE beam_process_group_message_queue_length gauge
beam_process_group_message_queue_length{group="application_controller"} 0
beam_process_group_message_queue_length{group="code_server"} 0
beam_process_group_message_queue_length{group="erlang:apply/2"} 0
beam_process_group_message_queue_length{group="g:w/0"} 0
beam_process_group_message_queue_length{group="kernel_sup"} 0
beam_process_group_message_queue_length{group="other"} 1
`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := testutil.CollectAndCompare(e.Scrape(ctx), strings.NewReader(want),
		"beam_process_group_processes", "beam_process_group_message_queue_length"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.CollectAndCount(e.Scrape(ctx), "beam_process_group_memory_bytes", "beam_process_group_reductions_per_second"); got != 12 {
		t.Errorf("%d memory and reductions series, want 12", got)
	}
	calls := 0
	for _, c := range n.calls {
		if strings.HasPrefix(c, "probe:top_processes(") {
			calls++
		}
	}
	if calls != 1 {
		t.Errorf("%d top_processes calls for two collectors and two scrapes within the tier, want 1", calls)
	}
}

// Without the processes collector there is no scan to read, and
// process_groups says so rather than scanning on its own.
func TestProcessGroupsWithoutProcesses(t *testing.T) {
	e, err := NewExporterWith(connectedNode(nil), Tiers{Fast: time.Minute, Slow: time.Minute}, []string{"process_groups"}, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fams := gather(t, e.Scrape(ctx))
	if v, ok := lookup(fams, "beam_scrape_collector_success", "collector", "process_groups"); !ok || v != 0 {
		t.Fatalf("process_groups success = %v, %v; want 0", v, ok)
	}
	if _, ok := fams["beam_process_group_memory_bytes"]; ok {
		t.Fatal("group metrics without a scan")
	}
}

// groupModule holds workers of one kind, and on OTP 27 and later proc_lib
// processes labelled {conn, I}; each worker says it is up before start
// returns, so that none is still being born when the node is scanned.
const groupModule = `-module(beam_exporter_test_group).
-export([start/1, labelled/1, worker/1, memory/0, ticker/1]).
start(N) ->
    Self = self(),
    Ps = [spawn(beam_exporter_test_group, worker, [Self]) || _ <- lists:seq(1, N)],
    [receive {up, P} -> ok end || P <- Ps],
    persistent_term:put(beam_exporter_test_group, Ps), ok.
worker(Parent) -> Parent ! {up, self()}, receive stop -> ok end.
ticker(State) -> receive stop -> ok after 1 -> work(2000), ticker(State) end.
work(0) -> ok;
work(N) -> work(N - 1).
labelled(N) ->
    Self = self(),
    Ps = [proc_lib:spawn(fun() -> proc_lib:set_label({conn, I}), Self ! {up, self()}, receive stop -> ok end end)
          || I <- lists:seq(1, N)],
    [receive {up, P} -> ok end || P <- Ps], ok.
memory() -> lists:sum([M || P <- persistent_term:get(beam_exporter_test_group), {memory, M} <- [process_info(P, memory)]]).
`

// 5,000 small workers of one kind: their group ranks first by count, and
// its memory is theirs as the node reads it. The groups add up to the
// scan's own count of processes and to their memory as the node reads it.
func TestLiveProcessGroups(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		loadModule(t, node, groupModule)
		node.Eval(t, `beam_exporter_test_group:start(5000).`)
		// Two processes at work, holding enough memory to make the top groups.
		node.Eval(t, `[spawn(beam_exporter_test_group, ticker, [lists:seq(1, 100000)]) || _ <- [1, 2]], ok.`)
		// A registered process is its own group, under its name (the scan
		// reads the registered names once, not per process).
		node.Eval(t, `register(beam_exporter_test_named, spawn(fun() -> L = lists:seq(1, 200000), receive stop -> L end end)), ok.`)
		labels := otp >= "27"
		if labels {
			node.Eval(t, `beam_exporter_test_group:labelled(100).`)
		}
		client, err := erlnode.New(erlnode.Config{Target: node.Name, Cookie: node.Cookie, LoadProbe: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(client.Close)
		// Tiers of a minute: the scrape and TopProcesses read one scan.
		e, err := NewExporterWith(client, Tiers{Fast: time.Minute, Slow: time.Minute}, []string{"processes", "process_groups"}, log.NewNopLogger())
		if err != nil {
			t.Fatal(err)
		}
		fams := scrapeWithin(t, e, time.Minute)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		snap, err := e.TopProcesses(ctx) // the same scan, from the tier cache
		if err != nil {
			t.Fatal(err)
		}
		groupMemory := node.Eval(t, `beam_exporter_test_group:memory().`)
		nodeMemory := node.Eval(t, `Me = self(), lists:sum([M || P <- processes(), P =/= Me, {memory, M} <- [process_info(P, memory)]]).`)

		const kind, replGroup = "beam_exporter_test_group:worker/1", "erltest_repl:init/1"
		byCount := map[string]float64{}
		var processes, memory float64
		for _, m := range fams["beam_process_group_processes"].GetMetric() {
			byCount[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			processes += m.GetGauge().GetValue()
		}
		for _, m := range fams["beam_process_group_memory_bytes"].GetMetric() {
			memory += m.GetGauge().GetValue()
		}
		if byCount[kind] != 5000 {
			t.Fatalf("%s has %v processes, want 5000: %v", kind, byCount[kind], byCount)
		}
		for g, n := range byCount {
			if g != kind && n >= byCount[kind] {
				t.Errorf("group %s has %v processes, as many as the 5,000 workers", g, n)
			}
		}
		if v := value(t, fams, "beam_process_group_reductions_per_second", "group", "beam_exporter_test_group:ticker/1"); v <= 0 {
			t.Errorf("two processes at work every millisecond do %v reductions per second", v)
		}
		if byCount["beam_exporter_test_named"] != 1 {
			t.Errorf("the registered process is not a group of its own: %v", byCount)
		}
		if labels && byCount["conn"] != 100 {
			t.Errorf("the 100 processes labelled {conn, I} are %v in group conn: %v", byCount["conn"], byCount)
		}
		var want float64
		fmt.Sscan(groupMemory, &want)
		got := value(t, fams, "beam_process_group_memory_bytes", "group", kind)
		if math.Abs(got-want) > 0.02*want {
			t.Errorf("%s holds %.0f bytes, the node reads %.0f for its processes", kind, got, want)
		}
		if processes != float64(snap.Processes) {
			t.Errorf("the groups hold %.0f processes, the scan read %d", processes, snap.Processes)
		}
		// The node's read leaves out the process that evaluates it, the
		// test's shell: its heap grows as it reads. That process is a group
		// of its own, left out here too.
		if byCount[replGroup] != 1 {
			t.Fatalf("group %s has %v processes, want the test's shell alone", replGroup, byCount[replGroup])
		}
		memory -= value(t, fams, "beam_process_group_memory_bytes", "group", replGroup)
		fmt.Sscan(nodeMemory, &want)
		if math.Abs(memory-want) > 0.02*want {
			t.Errorf("the groups hold %.0f bytes, the node reads %.0f for all its processes", memory, want)
		}
		t.Logf("%d processes in %d series; %s %.0f bytes (node %s); all %.0f bytes (node %s)",
			snap.Processes, len(byCount), kind, got, groupMemory, memory, nodeMemory)
	})
}

// A node of 250,000 processes is grouped over three refreshes, one slice
// each, asking each for up to 1,000 groups: the exported groups are the sum
// of each slice's latest, so after a whole rotation every process is in
// exactly one of them, and a group that is in one slice's other stays there.
func TestProcessGroupsSlices(t *testing.T) {
	none := etf.List{}
	slice := func(groups etf.List, other etf.Tuple) etf.Term {
		r := topReply(none, none, none, none, 500000)
		r.(etf.Tuple)[1].(etf.Map)[etf.Atom("groups")] = groups
		r.(etf.Tuple)[1].(etf.Map)[etf.Atom("groups_other")] = other
		return r
	}
	g := func(name string, procs, mem int) etf.Tuple { return etf.Tuple{[]byte(name), procs, mem, 1, 10} }
	node := &fakeNode{replies: map[string]etf.Term{
		"erlang:system_info(process_count)":   250000,
		"probe:top_processes(10,20,0,3,1000)": slice(etf.List{g("worker", 80000, 8e8), g("rex", 1, 5000)}, etf.Tuple{3, 300, 0, 0}),
		"probe:top_processes(10,20,1,3,1000)": slice(etf.List{g("worker", 85000, 8.5e8), g("conn", 2000, 9e8)}, etf.Tuple{0, 0, 0, 0}),
		"probe:top_processes(10,20,2,3,1000)": slice(etf.List{g("worker", 82000, 8.2e8), g("other", 1, 7)}, etf.Tuple{5, 500, 2, 0}),
	}}
	c := &processesCollector{groupsTopK: 1}
	want := []string{
		"worker 80000 800000000, other 4 5300",           // slice 0: rex and its other
		"worker 165000 1650000000, other 2004 900005300", // and slice 1's conn
		"worker 247000 2470000000, other 2010 900005807", // and slice 2's other, and a process registered as other
		"worker 247000 2470000000, other 2010 900005807", // slice 0 again
	}
	for i, w := range want {
		if err := c.Update(context.Background(), node, make(chan prometheus.Metric, 100)); err != nil {
			t.Fatal(err)
		}
		snap, ok := c.latestRanking(node.Generation())
		if !ok {
			t.Fatalf("refresh %d: no snapshot", i+1)
		}
		var got []string
		for _, g := range snap.Groups {
			got = append(got, fmt.Sprintf("%s %.0f %.0f", g.Group, g.Processes, g.MemoryBytes))
		}
		if strings.Join(got, ", ") != w {
			t.Errorf("refresh %d: groups %q, want %q", i+1, strings.Join(got, ", "), w)
		}
	}
}

// groupsCacheModule drives the probe's grouping scan from inside the node.
// Its workers, once up, set a proc_lib label when asked to. groups/0 scans
// with room for 1,000 groups, checks that the groups and other add up to
// the processes the scan read, and answers name => processes.
const groupsCacheModule = `-module(beam_exporter_test_groups_cache).
-export([start/1, worker/1, newcomers/1, newcomer/0, groups/0, groups/2, count/1, sliced/2, label/2, distinct/1,
         cached/0, read/0, unordered/0, churn/1]).
start(N) ->
    Self = self(),
    Ps = [spawn(beam_exporter_test_groups_cache, worker, [Self]) || _ <- lists:seq(1, N)],
    [receive {up, P} -> ok end || P <- Ps],
    persistent_term:put(beam_exporter_test_groups_cache, Ps), ok.
worker(Parent) -> Parent ! {up, self()}, loop().
newcomers(N) ->
    Ps = [spawn(beam_exporter_test_groups_cache, newcomer, []) || _ <- lists:seq(1, N)],
    persistent_term:put(beam_exporter_test_newcomers, Ps), ok.
newcomer() -> receive stop -> ok end.
loop() ->
    receive
        {label, L, From} -> proc_lib:set_label(L), From ! {labelled, self()}, loop();
        stop -> ok
    end.
groups() ->
    {N, Groups} = groups(0, 1),
    N = lists:sum(maps:values(Groups)),
    Groups.
%% The processes the scan read (in every slice), and the slice's groups.
groups(Slice, Slices) ->
    {ok, #{groups := G, groups_other := {Other, _, _, _}, processes := N}} =
        beam_exporter_probe_v8:top_processes(10, 0, Slice, Slices, 1000, erlang:monotonic_time(millisecond) + 60000),
    {N, maps:from_list([{Name, C} || {Name, C, _, _, _} <- G] ++ [{other, Other}])}.
%% Name's processes over the Slices slices, one scan of each, whose groups
%% add up to every process the scans read.
sliced(Name, Slices) ->
    Scans = [groups(S, Slices) || S <- lists:seq(0, Slices - 1)],
    {N, _} = hd(Scans),
    N = lists:sum([lists:sum(maps:values(G)) || {_, G} <- Scans]),
    lists:sum([maps:get(Name, G, 0) || {_, G} <- Scans]).
count(Name) -> maps:get(Name, groups(), 0).
%% Whether a scan of the whole node read the groups of no more processes
%% than it must: the registered ones, named anew by every scan, the
%% processes new since the last scan (this call's own, and a few to spare
%% for the node's and the connection's), and where labels exist the known
%% processes of one class of 64 by pid hash (the probe's refresh), at most
%% the largest class. The walk that compared pids read 160 and more here.
read() ->
    Refreshed = case erlang:function_exported(proc_lib, set_label, 1) of
                    true ->
                        Classes = lists:foldl(fun(P, M) -> maps:update_with(erlang:phash2(P, 64), fun(C) -> C + 1 end, 1, M) end,
                                              #{}, erlang:processes()),
                        lists:max(maps:values(Classes));
                    false -> 0
                end,
    {ok, #{groups_read := Read, processes := N}} =
        beam_exporter_probe_v8:top_processes(10, 0, 0, 1, 1000, erlang:monotonic_time(millisecond) + 60000),
    Most = length(erlang:registered()) + 4 + Refreshed,
    {Read =< Most, Read, Most, N}.
%% Spawns N processes that exit at once, one after another: on a node of
%% a small process table, the slots go round and new pids take freed ones.
churn(0) -> ok;
churn(N) -> {P, R} = spawn_monitor(fun() -> ok end), receive {'DOWN', R, process, P, _} -> churn(N - 1) end.
%% Whether erlang:processes/0 lists some pid after a greater one.
unordered() ->
    Ps = erlang:processes(),
    Ps =/= lists:sort(Ps).
%% Labels the workers From..To (in the order start/1 spawned them).
label(Range, L) ->
    Ps = [lists:nth(I, persistent_term:get(beam_exporter_test_groups_cache)) || I <- Range],
    [P ! {label, L, self()} || P <- Ps],
    [receive {labelled, P} -> ok end || P <- Ps], ok.
%% N processes, each labelled with a label of its own.
distinct(N) ->
    Self = self(),
    Ps = [proc_lib:spawn(fun() -> proc_lib:set_label(integer_to_binary(I)), Self ! {up, self()},
                                  receive stop -> ok end end) || I <- lists:seq(1, N)],
    [receive {up, P} -> ok end || P <- Ps], ok.
%% Whether the groups cache holds a cache: takes it and puts it back.
cached() ->
    Ref = make_ref(),
    beam_exporter_probe_v8_groups ! {take, self(), Ref, {0, 1}},
    receive {Ref, Held} -> beam_exporter_probe_v8_groups ! {put, {0, 1}, Held}, Held =/= none end.
`

// The groups cache: a scan reads the groups only of the processes the
// last one did not know, so these checks scan a node again and again as it
// changes, and each scan's groups must add up to the processes it read.
// The proof that the cache is used is the scan's own count of the groups
// it read (groups_read), and, where labels exist, that a label set since
// the cache learnt a process shows only within 64 scans. The node's table
// of 16,384 slots goes round during the test, as a busy node's does, so
// that it lists processes out of pid order.
func TestLiveProcessGroupsCache(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp, "+P", "16384")
		client, err := erlnode.New(erlnode.Config{Target: node.Name, Cookie: node.Cookie, LoadProbe: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(client.Close)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := client.EnsureConnected(ctx); err != nil {
			t.Fatal(err)
		}
		if err := client.EnsureSession(ctx); err != nil { // loads the probe
			t.Fatal(err)
		}
		loadModule(t, node, groupsCacheModule)
		node.Eval(t, `beam_exporter_test_groups_cache:start(5000).`)
		const kind = `<<"beam_exporter_test_groups_cache:worker/1">>`
		expect := func(expr, want string) {
			t.Helper()
			if got := node.Eval(t, expr); got != want {
				t.Fatalf("%s = %s, want %s", expr, got, want)
			}
		}
		count := `beam_exporter_test_groups_cache:count(` + kind + `).`
		expect(count, "5000") // learnt
		expect(`beam_exporter_test_groups_cache:cached().`, "true")
		expect(count, "5000") // known
		// In three slices, as on a node of more than 200,000 processes: each
		// slice has a cache of its own.
		sliced := `beam_exporter_test_groups_cache:sliced(` + kind + `, 3).`
		expect(sliced, "5000") // learnt
		expect(sliced, "5000") // known

		// A known process registered since is its name's group.
		node.Eval(t, `register(beam_exporter_test_late, hd(persistent_term:get(beam_exporter_test_groups_cache))).`)
		expect(`G = beam_exporter_test_groups_cache:groups(), [maps:get(K, G, 0) || K <- [`+kind+`, <<"beam_exporter_test_late">>]].`,
			`[4999,1]`)
		// Exited processes are passed over, and new ones, in the slots
		// they freed, are learnt.
		node.Eval(t, `[P ! stop || P <- lists:sublist(persistent_term:get(beam_exporter_test_groups_cache), 2, 1000)], ok.`)
		node.Eval(t, `beam_exporter_test_groups_cache:churn(20000).`)
		node.Eval(t, `beam_exporter_test_groups_cache:newcomers(1500).`)
		expect(count, "3999")
		expect(count, "3999")
		expect(`beam_exporter_test_groups_cache:count(<<"beam_exporter_test_groups_cache:newcomer/0">>).`, "1500")
		// The table of 16,384 slots has gone round: the newcomers, in
		// freed slots, are listed before processes whose pids are smaller
		// than theirs. The cache must not take the table's order for the
		// pids'; it knows them all the same.
		expect(`beam_exporter_test_groups_cache:unordered().`, "true")
		if got := node.Eval(t, `beam_exporter_test_groups_cache:read().`); !strings.HasPrefix(got, "{true,") {
			t.Fatalf("a scan with the cache warm read too many groups afresh: {Within, Read, Most, Processes} = %s", got)
		} else {
			t.Logf("a scan with the cache warm: {Within, Read, Most, Processes} = %s", got)
		}
		// And a known newcomer registered since is its name's group.
		node.Eval(t, `register(beam_exporter_test_later, lists:nth(700, persistent_term:get(beam_exporter_test_newcomers))).`)
		expect(`G = beam_exporter_test_groups_cache:groups(), [maps:get(K, G, 0) || K <- [<<"beam_exporter_test_groups_cache:newcomer/0">>, <<"beam_exporter_test_later">>]].`,
			`[1499,1]`)

		if otp < "27" {
			return // no labels
		}
		// 128 known workers labelled since: a scan reads afresh about 2 of
		// them (one known process in 64, by pid hash), and any 64 scans in
		// a row have read them all.
		node.Eval(t, `beam_exporter_test_groups_cache:label(lists:seq(2001, 2128), late).`)
		first := node.Eval(t, `beam_exporter_test_groups_cache:count(<<"late">>).`)
		if first == "128" {
			t.Fatal("a scan read afresh every known process labelled since: the cache is not used")
		}
		node.Eval(t, `[beam_exporter_test_groups_cache:groups() || _ <- lists:seq(1, 63)], ok.`)
		expect(`beam_exporter_test_groups_cache:count(<<"late">>).`, "128")
		expect(count, "3871")
		// The same in three slices, each of its own cache (a cache put for
		// one number of slices drops those of any other).
		expect(`beam_exporter_test_groups_cache:sliced(<<"late">>, 3).`, "128") // learnt
		node.Eval(t, `beam_exporter_test_groups_cache:label(lists:seq(2201, 2328), later).`)
		if n := node.Eval(t, `beam_exporter_test_groups_cache:sliced(<<"later">>, 3).`); n == "128" {
			t.Fatal("the slices' scans read afresh every known process labelled since: their caches are not used")
		}
		node.Eval(t, `[beam_exporter_test_groups_cache:sliced(<<"later">>, 3) || _ <- lists:seq(1, 63)], ok.`)
		expect(`beam_exporter_test_groups_cache:sliced(<<"later">>, 3).`, "128")
		expect(count, "3743")

		// More groups than ids: the scan counts the rest as other, still
		// adding up, and keeps no cache; the next scan learns afresh.
		node.Eval(t, `beam_exporter_test_groups_cache:distinct(4200).`)
		node.Eval(t, `beam_exporter_test_groups_cache:groups().`)
		expect(`beam_exporter_test_groups_cache:cached().`, "false")
		expect(count, "3743")
		t.Logf("after the label: %s of 128 labelled processes in their label's group", first)
	})
}
