// Tests of every collector against real BEAM nodes of each OTP release in production.

package collector

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

// countingTarget counts the calls that reach the node.
type countingTarget struct {
	*erlnode.Client
	calls atomic.Int64
}

func (c *countingTarget) Call(ctx context.Context, m, f string, args ...etf.Term) (etf.Term, error) {
	c.calls.Add(1)
	return c.Client.Call(ctx, m, f, args...)
}

func (c *countingTarget) ProbeCall(ctx context.Context, f string, args ...etf.Term) (etf.Term, error) {
	c.calls.Add(1)
	return c.Client.ProbeCall(ctx, f, args...)
}

type live struct {
	node     *erltest.Node
	client   *erlnode.Client
	target   *countingTarget
	exporter *Exporter
}

type liveOptions struct {
	tiers      Tiers
	loadProbe  bool
	logger     log.Logger            // nil discards
	configure  func(*erlnode.Config) // changes to the client's configuration
	collectors []string              // nil: every collector
}

// connect starts an exporter for node, as main does, minus HTTP.
func connect(t *testing.T, node *erltest.Node, o liveOptions) *live {
	t.Helper()
	if o.tiers.Fast == 0 {
		o.tiers = Tiers{Fast: time.Millisecond, Slow: time.Millisecond}
	}
	if o.logger == nil {
		o.logger = log.NewNopLogger()
	}
	cfg := erlnode.Config{
		Target: node.Name, Cookie: node.Cookie, LoadProbe: o.loadProbe, Session: Session(Names()), Logger: o.logger,
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	client, err := erlnode.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	target := &countingTarget{Client: client}
	collectors := o.collectors
	if collectors == nil {
		collectors = plainNodeCollectors() // the opt-in ones too
	}
	e, err := NewExporterWith(target, o.tiers, collectors, o.logger)
	if err != nil {
		t.Fatal(err)
	}
	return &live{node: node, client: client, target: target, exporter: e}
}

// scrape gathers one scrape and indexes it by family name.
func (l *live) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	return l.scrapeWithin(t, 20*time.Second)
}

// scrapeWithin is scrape with the given scrape deadline.
func (l *live) scrapeWithin(t *testing.T, deadline time.Duration) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	return gather(t, l.exporter.Scrape(ctx))
}

// gather collects c in a fresh registry and indexes it by family name. It
// uses t.Error, not t.Fatal, so other goroutines may call it.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Error(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range families {
		out[f.GetName()] = f
	}
	return out
}

// value returns the sample of name whose labels include the given pairs.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := lookup(fams, name, labels...)
	if !ok {
		t.Fatalf("no sample %s%v in the scrape", name, labels)
	}
	return v
}

func lookup(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
metrics:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue metrics
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

func evalFloat(t *testing.T, n *erltest.Node, expr string) float64 {
	t.Helper()
	s := n.Eval(t, expr)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s answered %q, not a number", expr, s)
	}
	return f
}

// forEachRelease runs the test against a node of every OTP release, in parallel.
func forEachRelease(t *testing.T, test func(t *testing.T, otp string)) {
	for _, otp := range erltest.Releases() {
		t.Run("OTP"+otp, func(t *testing.T) {
			t.Parallel()
			test(t, otp)
		})
	}
}

// needsMore are collectors that are unavailable on a node started with
// nothing but the emulator, by design: their own tests give them what they
// need (mnesia: the application running).
var needsMore = map[string]bool{"mnesia": true}

// plainNodeCollectors is every collector that works on a plain node.
func plainNodeCollectors() []string {
	var names []string
	for _, n := range Names() {
		if !needsMore[n] {
			names = append(names, n)
		}
	}
	return names
}

func startNode(t *testing.T, otp string, args ...string) *erltest.Node {
	return erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("target"), Args: args})
}

func TestLiveHiddenConnection(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: true})
		if up := value(t, l.scrape(t), "beam_up"); up != 1 {
			t.Fatalf("beam_up = %v", up)
		}
		alive := strings.SplitN(l.client.LocalName(), "@", 2)[0]
		if got := node.Eval(t, "nodes()."); got != "[]" {
			t.Errorf("nodes() on the target = %s, want []", got)
		}
		if got := node.Eval(t, "nodes(hidden)."); !strings.Contains(got, l.client.LocalName()) {
			t.Errorf("nodes(hidden) on the target = %s, want it to list %s", got, l.client.LocalName())
		}
		names, err := erltest.EPMDNames()
		if err != nil {
			t.Fatal(err)
		}
		if _, registered := names[alive]; registered {
			t.Errorf("EPMD lists the exporter as %s", alive)
		}
		// The node holds the cookie and a connection to the exporter, and
		// still cannot run anything on it.
		call := fmt.Sprintf("rpc:call('%s', erlang, node, [], 3000).", l.client.LocalName())
		if got := node.Eval(t, call); !strings.HasPrefix(got, "{badrpc,") {
			t.Errorf("%s on the target = %s, want a badrpc", call, got)
		}
	})
}

func TestLiveCounts(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: true})

		before := value(t, l.scrape(t), "beam_processes")
		node.Eval(t, `[spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 10000)], ok.`)
		after := value(t, l.scrape(t), "beam_processes")
		if d := after - before; d < 9950 || d > 10050 {
			t.Errorf("beam_processes rose by %v after spawning 10,000 processes", d)
		}

		node.Eval(t, `P = spawn(fun() -> receive never_sent -> ok end end), register(mailbox_holder, P), [P ! {m, I} || I <- lists:seq(1, 25000)], ok.`)
		node.Eval(t, `T = ets:new(big_table, [named_table, public]), ets:insert(big_table, [{I, I} || I <- lists:seq(1, 100000)]), ok.`)
		fams := l.scrape(t)
		if v := value(t, fams, "beam_process_message_queue_length", "rank", "1", "process", "mailbox_holder"); v != 25000 {
			t.Errorf("rank 1 mailbox = %v, want 25000", v)
		}
		if v := value(t, fams, "beam_ets_table_objects", "table", "big_table"); v != 100000 {
			t.Errorf("big_table objects = %v, want 100000", v)
		}
		if v := value(t, fams, "beam_ets_tables"); v < 1 {
			t.Errorf("beam_ets_tables = %v", v)
		}
		for _, name := range []string{"beam_process_limit", "beam_ports", "beam_port_limit", "beam_atoms", "beam_atom_limit", "beam_ets_table_limit"} {
			if v := value(t, fams, name); v <= 0 {
				t.Errorf("%s = %v", name, v)
			}
		}
		if v := value(t, fams, "beam_node_info", "otp_release", otp); v != 1 {
			t.Errorf("beam_node_info{otp_release=%q} = %v", otp, v)
		}
		if start := value(t, fams, "beam_start_time_seconds"); time.Since(time.Unix(int64(start), 0)) > 10*time.Minute || start > float64(time.Now().Unix()+1) {
			t.Errorf("beam_start_time_seconds = %v, not within the last minutes", start)
		}
		if v := value(t, fams, "beam_lock_counting_available"); v != 0 {
			t.Errorf("beam_lock_counting_available = %v on a standard build", v)
		}
	})
}

func TestLiveMemory(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: true})
		before := value(t, l.scrape(t), "beam_memory_bytes", "kind", "binary")
		node.Eval(t, `P = spawn(fun() -> B = binary:copy(<<1>>, 200*1024*1024), receive stop -> B end end), register(binary_holder, P), ok.`)
		fams := l.scrape(t)
		total := evalFloat(t, node, "erlang:memory(total).")
		// Less 1 MiB: the node's other binaries come and go meanwhile (once
		// the rise came out 4 KB short of 200 MB).
		if d := value(t, fams, "beam_memory_bytes", "kind", "binary") - before; d < 199*1024*1024 {
			t.Errorf("a 200 MB binary raised binary memory by %v bytes", d)
		}
		var sum float64
		for _, m := range fams["beam_memory_bytes"].GetMetric() {
			sum += m.GetGauge().GetValue()
		}
		if diff := sum/total - 1; diff > 0.01 || diff < -0.01 {
			t.Errorf("sum(beam_memory_bytes) = %v, erlang:memory(total) = %v: off by %.2f%%", sum, total, diff*100)
		}
	})
}

func TestLiveSchedulers(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		idle := startNode(t, otp, "+S", "2:2")
		// The scheduler collectors alone: the other collectors' calls are
		// work the node does for us inside the window, and on a loaded host
		// their wall time grows until the node no longer looks idle.
		l := connect(t, idle, liveOptions{loadProbe: true, collectors: []string{"scheduler", "run_queue"}})
		l.scrape(t)                 // the first refresh measures a short window of its own
		time.Sleep(2 * time.Second) // the window measured
		if u := value(t, l.scrape(t), "beam_scheduler_utilization_ratio", "type", "normal"); u > 0.1 {
			t.Errorf("idle node: normal scheduler utilization %v, want <= 0.1", u)
		}
		if s := value(t, l.scrape(t), "beam_schedulers", "type", "normal"); s != 2 {
			t.Errorf("beam_schedulers{type=normal} = %v, want 2", s)
		}
		l.client.Close()
		waitFor(t, "scheduler wall time to be switched off after the exporter left", func() bool {
			return idle.Eval(t, "erlang:statistics(scheduler_wall_time).") == "undefined"
		})

		busy := startNode(t, otp, "+S", "2:2")
		busy.Eval(t, `Loop = fun F(N) -> F(N + 1) end, [spawn(fun() -> Loop(0) end) || _ <- [1, 2]], ok.`)
		b := connect(t, busy, liveOptions{loadProbe: true})
		fams := b.scrape(t)
		time.Sleep(time.Second)
		fams = b.scrape(t)
		if u := value(t, fams, "beam_scheduler_utilization_ratio", "type", "normal"); u < 0.9 {
			t.Errorf("two busy loops on +S 2:2: normal scheduler utilization %v, want >= 0.9", u)
		}
		gcBefore := value(t, fams, "beam_gc_runs_total")
		redsBefore := value(t, fams, "beam_reductions_total")
		gcTimeBefore := value(t, fams, "beam_msacc_seconds_total", "thread_type", "scheduler", "state", "emulator")
		busy.Eval(t, `[spawn(fun() -> lists:seq(1, 200000) end) || _ <- lists:seq(1, 50)], ok.`)
		time.Sleep(500 * time.Millisecond)
		fams = b.scrape(t)
		if v := value(t, fams, "beam_gc_runs_total"); v <= gcBefore {
			t.Errorf("beam_gc_runs_total did not rise under load: %v -> %v", gcBefore, v)
		}
		if v := value(t, fams, "beam_reductions_total"); v <= redsBefore {
			t.Errorf("beam_reductions_total did not rise under load: %v -> %v", redsBefore, v)
		}
		if v := value(t, fams, "beam_msacc_seconds_total", "thread_type", "scheduler", "state", "emulator"); v <= gcTimeBefore {
			t.Errorf("emulator time in msacc did not rise under load: %v -> %v", gcTimeBefore, v)
		}
		b.client.Close()
		waitFor(t, "microstate accounting to be switched off after the exporter left", func() bool {
			return !msaccOn(t, busy)
		})
	})
}

func TestLiveCacheTiers(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: true, tiers: Tiers{Fast: 2 * time.Second, Slow: time.Minute}})
		l.scrape(t)
		first := l.target.calls.Load()
		l.scrape(t)
		if n := l.target.calls.Load() - first; n != 0 {
			t.Errorf("a second scrape within the fast tier made %d calls, want 0", n)
		}
		time.Sleep(2100 * time.Millisecond)
		l.scrape(t)
		if n := l.target.calls.Load() - first; n == 0 {
			t.Error("a scrape after the fast tier made no calls")
		}
	})
}

func TestLiveDownAndBack(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		logger, logs := debugLogger()
		logOnFailure(t, logs)
		l := connect(t, node, liveOptions{loadProbe: true, logger: logger})
		// Reconnecting in the background as main does: its attempts must
		// not make a scrape that comes after the node is back miss it.
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go l.client.Run(ctx)
		if up := value(t, l.scrape(t), "beam_up"); up != 1 {
			t.Fatalf("beam_up = %v before the kill", up)
		}
		node.Kill(t)
		fams := l.scrape(t)
		if up := value(t, fams, "beam_up"); up != 0 {
			t.Errorf("beam_up = %v after the kill", up)
		}
		for name := range fams {
			if name != "beam_up" && name != "beam_connection_errors_total" {
				t.Errorf("a down node still exports %s", name)
			}
		}
		node.Restart(t)
		if up := value(t, l.scrape(t), "beam_up"); up != 1 {
			t.Errorf("beam_up = %v on the first scrape after the restart", up)
		}
	})
}

func TestLiveProbeDisabled(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: false})
		fams := l.scrape(t)
		for _, c := range []string{"processes", "process_groups", "ets", "scheduler", "msacc"} {
			if v := value(t, fams, "beam_scrape_collector_success", "collector", c); v != 0 {
				t.Errorf("collector %s reports success %v without the probe", c, v)
			}
		}
		for _, c := range []string{"memory", "run_queue", "system_limits", "gc", "reductions", "runtime", "node", "locks", "allocators", "os_memory", "persistent_terms"} {
			if v := value(t, fams, "beam_scrape_collector_success", "collector", c); v != 1 {
				t.Errorf("collector %s reports success %v without the probe", c, v)
			}
		}
		if got := node.Eval(t, fmt.Sprintf("lists:keymember(%s, 1, code:all_loaded()).", erlnode.ProbeModule)); got != "false" {
			t.Errorf("the probe is loaded although code loading is off: %s", got)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, what, 10*time.Second, cond)
}

// A reconnect finds the probe loaded and must not load it again: a second
// load would push the running sessions and the msacc keeper onto old code.
func TestLiveProbeLoadedOnce(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: true})
		if !allSucceeded(l.scrape(t)) {
			t.Fatal("the first scrape did not fully succeed")
		}
		node.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s').", l.client.LocalName()))
		waitFor(t, "the exporter to notice the disconnect", func() bool { return !l.client.Up() })
		if !allSucceeded(l.scrape(t)) {
			t.Fatal("the scrape after the reconnect did not fully succeed")
		}
		if got := node.Eval(t, fmt.Sprintf("erlang:check_old_code(%s).", erlnode.ProbeModule)); got != "false" {
			t.Errorf("the probe was loaded again on reconnect (check_old_code = %s)", got)
		}
	})
}
