//go:build collectorcost

// Focused cost of the dist, mnesia, ports and sysmon collectors against real nodes:
//
//	go test -tags collectorcost -run TestCost -v ./collector
//
// It reports the wall time of one refresh and the node's CPU time per
// refresh (utime + stime of beam.smp from /proc, over many refreshes).

package collector

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// cpuTicks is the CPU time beam.smp has used, in clock ticks (1/100 s).
func cpuTicks(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return u + k
}

func measure(t *testing.T, name string, c Collector, node *erltest.Node, target Node, runs int) {
	t.Helper()
	ctx := context.Background()
	update := func() {
		ch := make(chan prometheus.Metric, 1024)
		if err := c.Update(ctx, target, ch); err != nil {
			t.Fatal(err)
		}
	}
	update()
	cpu0 := cpuTicks(t, node.OSPid())
	start := time.Now()
	for range runs {
		update()
	}
	wall := time.Since(start) / time.Duration(runs)
	cpu := (cpuTicks(t, node.OSPid()) - cpu0) * 10 * float64(time.Millisecond) / float64(runs)
	t.Logf("%s: %d refreshes, %v wall per refresh, node CPU %v per refresh; at the 30 s slow tier %.4f%% of one scheduler",
		name, runs, wall, time.Duration(cpu), cpu/float64(30*time.Second)*100)
}

func TestCostDist(t *testing.T) {
	const peers = 8
	target := startNode(t, "25")
	for range peers {
		p := erltest.Start(t, erltest.Options{OTP: "25", Name: erltest.UniqueName("peer"), Cookie: target.Cookie})
		target.Eval(t, fmt.Sprintf("true = net_kernel:connect_node('%s').", p.Name))
	}
	l := connect(t, target, liveOptions{loadProbe: true, collectors: []string{"dist"}})
	l.scrape(t) // connects
	measure(t, fmt.Sprintf("dist, %d peers", peers), distCollector{}, target, l.client, 2000)
}

func TestCostMnesia(t *testing.T) {
	node := startNode(t, "25")
	node.Eval(t, `ok = mnesia:start(),
		[begin
			T = list_to_atom("cost_" ++ integer_to_list(N)),
			{atomic, ok} = mnesia:create_table(T, [{attributes, [k, v]}]),
			[mnesia:dirty_write({T, K, K}) || K <- lists:seq(1, 1000)]
		 end || N <- lists:seq(1, 50)], ok.`)
	l := connect(t, node, liveOptions{collectors: []string{"mnesia"}})
	l.scrape(t) // connects
	measure(t, "mnesia, 50 tables of 1000 records", mnesiaCollector{}, node, l.client, 2000)
}

// TestCostPorts scans 100,000 ports: 15,000 UDP sockets, as many as the
// container's limit of 20,000 file descriptors allows, and 85,000 ports of
// the fd driver on the node's standard error, which take no descriptor of
// their own (each is named "2/2" and counted as one more driver).
func TestCostPorts(t *testing.T) {
	const sockets, fdPorts = 15000, 85000
	node := startNode(t, "25", "+Q", "200000")
	node.Eval(t, fmt.Sprintf(`Self = self(), spawn(fun() ->
		S = [element(2, {ok, _} = gen_udp:open(0)) || _ <- lists:seq(1, %d)],
		F = [open_port({fd, 2, 2}, [out]) || _ <- lists:seq(1, %d)],
		Self ! ready, receive stop -> {S, F} end end), receive ready -> ok end.`, sockets, fdPorts))
	l := connect(t, node, liveOptions{loadProbe: true, collectors: []string{"ports"}})
	l.scrape(t) // connects and loads the probe
	measure(t, fmt.Sprintf("ports, %d ports", sockets+fdPorts), portsCollector{}, node, l.client, 50)
}

// TestCostSysmon measures a refresh of the sysmon collector, and what each
// event costs the node in the monitor process: 200,000 long_gc events sent
// straight to it (their sender is not checked) while it is suspended, then
// timed from its resumption until its mailbox is empty.
func TestCostSysmon(t *testing.T) {
	for _, otp := range erltest.Releases() {
		t.Run("OTP"+otp, func(t *testing.T) {
			node := startNode(t, otp)
			l := connect(t, node, liveOptions{loadProbe: true, collectors: []string{"sysmon"}})
			l.scrape(t) // connects, loads the probe and starts the session's monitor
			measure(t, "sysmon, OTP "+otp, sysmonCollector{}, node, l.client, 2000)
			perEvent := node.Eval(t, `Mon = whereis(`+sysmonProcess+`), Self = self(),
				erlang:suspend_process(Mon),
				Info = [{timeout, 150}, {heap_size, 1000}, {heap_block_size, 2000}, {stack_size, 10},
				        {mbuf_size, 0}, {old_heap_size, 0}, {old_heap_block_size, 0}],
				[Mon ! {monitor, Self, long_gc, Info} || _ <- lists:seq(1, 200000)],
				{memory, Mem} = process_info(Mon, memory),
				T0 = erlang:monotonic_time(microsecond),
				erlang:resume_process(Mon),
				(fun W() -> case process_info(Mon, message_queue_len) of
					{_, 0} -> ok; _ -> erlang:yield(), W() end end)(),
				{(erlang:monotonic_time(microsecond) - T0) / 200000, Mem}.`)
			t.Logf("sysmon, OTP %s: {µs per event counted but not named, monitor memory with 200,000 queued} = %s", otp, perEvent)
			// Below the backlog mark each event is also named: 200 batches
			// of 500, each timed from resumption to an empty mailbox.
			named := node.Eval(t, `Mon = whereis(`+sysmonProcess+`), Self = self(),
				Info = [{timeout, 150}, {heap_size, 1000}, {heap_block_size, 2000}, {stack_size, 10},
				        {mbuf_size, 0}, {old_heap_size, 0}, {old_heap_block_size, 0}],
				Batch = fun() ->
					erlang:suspend_process(Mon),
					[Mon ! {monitor, Self, long_gc, Info} || _ <- lists:seq(1, 500)],
					T0 = erlang:monotonic_time(microsecond),
					erlang:resume_process(Mon),
					(fun W() -> case process_info(Mon, message_queue_len) of
						{_, 0} -> ok; _ -> erlang:yield(), W() end end)(),
					erlang:monotonic_time(microsecond) - T0 end,
				lists:sum([Batch() || _ <- lists:seq(1, 200)]) / 100000.`)
			t.Logf("sysmon, OTP %s: µs per event counted and named = %s", otp, named)
		})
	}
}

// TestCostSysmonFlood floods the monitor with real events: 200 processes
// holding 160 KB heaps collect in a loop for 5 s, each collection a
// large_heap event, while the monitor's mailbox and memory are sampled
// every 100 ms.
func TestCostSysmonFlood(t *testing.T) {
	for _, otp := range erltest.Releases() {
		t.Run("OTP"+otp, func(t *testing.T) {
			node := startNode(t, otp)
			l := connect(t, node, liveOptions{loadProbe: true, collectors: []string{"sysmon"}, configure: func(cfg *erlnode.Config) {
				lowThresholds(cfg)
				cfg.Session.SystemMonitor.LargeHeapBytes = 1 // ERTS takes at least 16384 words
			}})
			l.scrape(t)
			got := node.Eval(t, `Mon = whereis(`+sysmonProcess+`),
				Ps = [spawn(fun() -> L = lists:seq(1, 10000),
					(fun F() -> erlang:garbage_collect(), receive stop -> length(L) after 0 -> F() end end)() end)
					|| _ <- lists:seq(1, 200)],
				Samples = [begin timer:sleep(100), process_info(Mon, [message_queue_len, memory]) end || _ <- lists:seq(1, 50)],
				[P ! stop || P <- Ps],
				{lists:max([Q || [{_, Q}, _] <- Samples]), lists:max([M || [_, {_, M}] <- Samples])}.`)
			fams := l.scrape(t)
			events := value(t, fams, "beam_system_monitor_events_total", "event", "large_heap")
			unnamed, _ := lookup(fams, "beam_system_monitor_events_by_source_total", "event", "large_heap", "source", "unclassified")
			overloads := value(t, fams, "beam_system_monitor_overloads_total")
			t.Logf("sysmon flood, OTP %s: {largest mailbox, largest memory} = %s; %v large_heap events in 5 s, %.1f%% not named, %v overloads",
				otp, got, events, 100*unnamed/events, overloads)
		})
	}
}
