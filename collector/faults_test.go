// Fault injection against real nodes: a frozen node, a broken network, EPMD
// down, a wrong cookie, concurrent scrapes, and a soak of reconnects.

package collector

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	dto "github.com/prometheus/client_model/go"

	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

// tickTime is the net_ticktime of the nodes in these tests, in seconds: a
// dead connection must be noticed within it, and 60 s would make slow tests.
const tickTime = 4

// logBuffer collects a logger's lines while a test reads them.
type logBuffer = testkit.LockedBuffer

// debugLogger logs everything, debug included, as main does with --log.level=debug.
func debugLogger() (log.Logger, *logBuffer) {
	buf := &logBuffer{}
	return level.NewFilter(log.NewLogfmtLogger(buf), level.AllowAll()), buf
}

// logOnFailure prints the logs gathered in logs when t fails, so that a
// failure shows what the exporter saw.
func logOnFailure(t *testing.T, logs *logBuffer) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("exporter logs:\n%s", logs)
		}
	})
}

// allFailed reports whether every collector in the scrape failed.
func allFailed(fams map[string]*dto.MetricFamily) bool {
	f, ok := fams["beam_scrape_collector_success"]
	if !ok {
		return false
	}
	for _, m := range f.GetMetric() {
		if m.GetGauge().GetValue() != 0 {
			return false
		}
	}
	return true
}

// allSucceeded reports whether beam_up is 1 and every collector succeeded.
func allSucceeded(fams map[string]*dto.MetricFamily) bool {
	if up, _ := lookup(fams, "beam_up"); up != 1 {
		return false
	}
	f, ok := fams["beam_scrape_collector_success"]
	if !ok {
		return false
	}
	for _, m := range f.GetMetric() {
		if m.GetGauge().GetValue() != 1 {
			return false
		}
	}
	return true
}

// timedScrape scrapes with a deadline and fails the test if the scrape
// overran it by more than slack.
func (l *live) timedScrape(t *testing.T, deadline, slack time.Duration) map[string]*dto.MetricFamily {
	t.Helper()
	start := time.Now()
	fams := l.scrapeWithin(t, deadline)
	if took := time.Since(start); took > deadline+slack {
		t.Errorf("a scrape with a %s deadline took %s", deadline, took.Round(time.Millisecond))
	}
	return fams
}

func withTickTime(cfg *erlnode.Config) { cfg.NetTickTime = tickTime * time.Second }

func startTickingNode(t *testing.T) *erltest.Node {
	return startNode(t, "", "-kernel", "net_ticktime", fmt.Sprint(tickTime))
}

// Not parallel: it counts the process's goroutines, which parallel tests
// would add to.
func TestFaultFrozenNode(t *testing.T) {
	node := startTickingNode(t)
	l := connect(t, node, liveOptions{loadProbe: true, configure: withTickTime})
	if fams := l.scrape(t); !allSucceeded(fams) {
		t.Fatal("the first scrape did not fully succeed")
	}
	before := runtime.NumGoroutine()

	node.Signal(t, syscall.SIGSTOP)
	stopped := time.Now()
	var noticed time.Duration
	maxGoroutines := before
	for time.Since(stopped) < (tickTime+4)*time.Second {
		fams := l.timedScrape(t, time.Second, 500*time.Millisecond)
		if up := value(t, fams, "beam_up"); up != 0 && !allFailed(fams) {
			t.Fatalf("a scrape of the frozen node has beam_up 1 and successful collectors")
		}
		if noticed == 0 && !l.client.Up() {
			noticed = time.Since(stopped)
		}
		maxGoroutines = max(maxGoroutines, runtime.NumGoroutine())
		time.Sleep(200 * time.Millisecond)
	}
	if noticed == 0 || noticed > (tickTime+1)*time.Second {
		t.Errorf("the dead connection was noticed after %s, want within the tick time (%ds)", noticed, tickTime)
	}
	// Each scrape may leave its refreshes running until their deadline, and
	// one connection attempt; more than that would be a pile-up.
	if grown := maxGoroutines - before; grown > 60 {
		t.Errorf("goroutines grew by %d while the node was frozen", grown)
	}

	node.Signal(t, syscall.SIGCONT)
	took := testkit.WaitFor(t, "a full scrape after SIGCONT", 20*time.Second, func() bool {
		return allSucceeded(l.timedScrape(t, 2*time.Second, 500*time.Millisecond))
	})
	t.Logf("frozen node: dead connection noticed after %s; recovered %s after SIGCONT; goroutines %d before, at most %d during",
		noticed.Round(time.Millisecond), took.Round(time.Millisecond), before, maxGoroutines)
	testkit.WaitFor(t, "goroutines to settle", 10*time.Second, func() bool {
		return runtime.NumGoroutine() <= before+5
	})
}

func TestFaultNetwork(t *testing.T) {
	t.Parallel()
	node := startTickingNode(t)
	proxy := erltest.NewProxy(t, fmt.Sprintf("127.0.0.1:%d", node.Port(t)))
	l := connect(t, node, liveOptions{loadProbe: true, configure: func(cfg *erlnode.Config) {
		withTickTime(cfg)
		cfg.DistPort = proxy.Port()
	}})
	if !allSucceeded(l.scrape(t)) {
		t.Fatal("the first scrape through the proxy did not fully succeed")
	}

	t.Run("latency", func(t *testing.T) {
		proxy.SetLatency(100 * time.Millisecond)
		defer proxy.SetLatency(0)
		if fams := l.timedScrape(t, 5*time.Second, 500*time.Millisecond); !allSucceeded(fams) {
			t.Error("a scrape with 100 ms latency each way did not fully succeed")
		}
	})

	t.Run("cut", func(t *testing.T) {
		accepted := proxy.Accepted()
		proxy.Cut()
		took := testkit.WaitFor(t, "the exporter to notice the cut", time.Second, func() bool { return !l.client.Up() })
		if fams := l.timedScrape(t, 3*time.Second, 500*time.Millisecond); !allSucceeded(fams) {
			t.Error("the first scrape after a cut did not reconnect and succeed")
		}
		if proxy.Accepted() == accepted {
			t.Error("no new connection went through the proxy")
		}
		t.Logf("cut noticed after %s", took.Round(time.Millisecond))
	})

	t.Run("half-open", func(t *testing.T) {
		proxy.Stall()
		stalled := time.Now()
		for l.client.Up() {
			if time.Since(stalled) > (tickTime+1)*time.Second {
				t.Fatalf("the stalled connection still counts as up after %s", time.Since(stalled))
			}
			l.timedScrape(t, time.Second, 500*time.Millisecond)
			time.Sleep(100 * time.Millisecond)
		}
		noticed := time.Since(stalled)
		// Still stalled: scrapes answer on time, with beam_up 0.
		for range 3 {
			if up := value(t, l.timedScrape(t, time.Second, 500*time.Millisecond), "beam_up"); up != 0 {
				t.Errorf("beam_up = %v through a stalled link", up)
			}
		}
		// The link heals: the stalled connections are gone, new ones pass.
		proxy.Cut()
		proxy.Resume()
		took := testkit.WaitFor(t, "a full scrape after the link healed", 20*time.Second, func() bool {
			return allSucceeded(l.timedScrape(t, 2*time.Second, 500*time.Millisecond))
		})
		t.Logf("half-open connection noticed after %s; reconnected %s after the link healed",
			noticed.Round(time.Millisecond), took.Round(time.Millisecond))
	})
}

func TestFaultEPMD(t *testing.T) {
	t.Parallel()
	epmd := erltest.NewProxy(t, erltest.EPMDAddr)
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	name := erltest.UniqueName("late")
	shortHost, _, _ := strings.Cut(hostname, ".")
	logger, logs := debugLogger()
	client, err := erlnode.New(erlnode.Config{
		Target: name + "@" + shortHost, Cookie: "late-cookie", EPMDPort: epmd.Port(), LoadProbe: true,
		Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	e, err := NewExporter(client, Tiers{Fast: time.Millisecond, Slow: time.Millisecond}, logger)
	if err != nil {
		t.Fatal(err)
	}
	l := &live{client: client, exporter: e}

	for _, phase := range []struct {
		name   string
		before func()
		reason string
	}{
		{"EPMD down", epmd.Refuse, erlnode.ReasonUnreachable},
		{"name unknown to EPMD", func() { epmd.Listen(t) }, erlnode.ReasonUnknownNode},
	} {
		phase.before()
		if up := value(t, l.timedScrape(t, 2*time.Second, 500*time.Millisecond), "beam_up"); up != 0 {
			t.Fatalf("%s: beam_up = %v", phase.name, up)
		}
		if n := client.ConnectionErrors()[phase.reason]; n == 0 {
			t.Errorf("%s: no connection error counted as %s (%v)", phase.name, phase.reason, client.ConnectionErrors())
		}
		if lines := logs.Lines("reason=" + phase.reason); len(lines) != 1 {
			t.Errorf("%s: want one log line with reason=%s, got %d:\n%s", phase.name, phase.reason, len(lines), logs)
		}
	}

	node := erltest.Start(t, erltest.Options{Name: name, Cookie: "late-cookie"})
	if node.Name != client.Target() {
		t.Fatalf("the node came up as %s, not %s", node.Name, client.Target())
	}
	if !allSucceeded(l.scrape(t)) {
		t.Fatalf("the first scrape after the node registered did not connect:\n%s", logs)
	}
	if lines := logs.Lines("connected to the node again"); len(lines) != 1 {
		t.Errorf("want one log line on connecting, got %d:\n%s", len(lines), logs)
	}

	// EPMD goes away while the node runs, and the connection drops: the
	// scrape fails. EPMD comes back at once: the very next scrape connects,
	// however soon after the failed attempt it comes.
	epmd.Refuse()
	node.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s').", client.LocalName()))
	waitFor(t, "the exporter to notice the disconnect", func() bool { return !client.Up() })
	if up := value(t, l.scrape(t), "beam_up"); up != 0 {
		t.Fatalf("EPMD down again: beam_up = %v", up)
	}
	epmd.Listen(t)
	if up := value(t, l.scrape(t), "beam_up"); up != 1 {
		t.Errorf("the first scrape after EPMD came back: beam_up = %v\n%s", up, logs)
	}
}

func TestFaultWrongCookie(t *testing.T) {
	t.Parallel()
	node := startNode(t, "")
	logger, logs := debugLogger()
	const wrong = "not-the-cookie-5d1e"
	l := connect(t, node, liveOptions{logger: logger, configure: func(cfg *erlnode.Config) { cfg.Cookie = wrong }})
	// Long enough for three attempts (backoff 1 s, then 2 s).
	for start := time.Now(); time.Since(start) < 3500*time.Millisecond; {
		if up := value(t, l.timedScrape(t, time.Second, 500*time.Millisecond), "beam_up"); up != 0 {
			t.Fatalf("beam_up = %v with a wrong cookie", up)
		}
		time.Sleep(100 * time.Millisecond)
	}
	counts := l.client.ConnectionErrors()
	if counts[erlnode.ReasonAuth] < 2 {
		t.Errorf("connection errors = %v, want at least 2 counted as auth", counts)
	}
	for reason, n := range counts {
		if reason != erlnode.ReasonAuth && n != 0 {
			t.Errorf("%d connection errors counted as %s, want only auth", n, reason)
		}
	}
	if lines := logs.Lines("cannot connect"); len(lines) != 1 || !strings.Contains(lines[0], "reason=auth") {
		t.Errorf("want exactly one log line about the failure, with reason=auth; got:\n%s", logs)
	}
	if strings.Contains(logs.String(), wrong) {
		t.Error("the cookie appears in the log")
	}
}

func TestFaultConcurrentScrapes(t *testing.T) {
	t.Parallel()
	node := startNode(t, "")
	tiers := Tiers{Fast: time.Minute, Slow: 2 * time.Minute}
	l := connect(t, node, liveOptions{loadProbe: true, tiers: tiers})
	l.scrape(t) // connects, loads the probe and starts the session

	// A fresh exporter on the same connection: one scrape, then 50 at once.
	one, err := NewExporter(l.target, tiers, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	before := l.target.calls.Load()
	(&live{client: l.client, exporter: one}).scrape(t)
	single := l.target.calls.Load() - before

	many, err := NewExporter(l.target, tiers, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	before = l.target.calls.Load()
	var wg sync.WaitGroup
	ups := make(chan float64, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			fams := gather(t, many.Scrape(ctx))
			up, _ := lookup(fams, "beam_up")
			ups <- up
		}()
	}
	wg.Wait()
	close(ups)
	for up := range ups {
		if up != 1 {
			t.Errorf("a concurrent scrape had beam_up %v", up)
		}
	}
	if concurrent := l.target.calls.Load() - before; concurrent != single {
		t.Errorf("50 concurrent scrapes made %d calls to the node; one scrape makes %d", concurrent, single)
	}
}

func TestFaultSoak(t *testing.T) {
	// Not parallel: it shortens two sampling windows that every exporter in
	// this process reads, so that 200 full refreshes are quick. The windows
	// are not under test.
	const scrapes, reconnects = 10_000, 200
	defer func(w time.Duration) { *processesWindow = w }(*processesWindow)
	defer func(w time.Duration) { firstSampleWindow = w }(firstSampleWindow)
	*processesWindow, firstSampleWindow = 10*time.Millisecond, 10*time.Millisecond

	node := startNode(t, "")
	proxy := erltest.NewProxy(t, fmt.Sprintf("127.0.0.1:%d", node.Port(t)))
	logger, logs := debugLogger()
	l := connect(t, node, liveOptions{loadProbe: true, tiers: Tiers{Fast: 15 * time.Second, Slow: 30 * time.Second}, logger: logger,
		configure: func(cfg *erlnode.Config) { cfg.DistPort = proxy.Port() }})

	reconnect := func() {
		proxy.Cut()
		testkit.WaitFor(t, "the exporter to notice the cut", 2*time.Second, func() bool { return !l.client.Up() })
	}
	scrape := func() {
		if !allSucceeded(l.scrape(t)) {
			t.Fatalf("a soak scrape did not fully succeed:\n%s", logs)
		}
	}
	// Warm up: the first connection, and the first reconnects, allocate
	// what every later one reuses.
	for range 5 {
		scrape()
		reconnect()
	}
	scrape()
	// The first evaluation on the control channel loads code, which adds
	// atoms of its own; the second reads the baseline.
	evalFloat(t, node, "erlang:system_info(atom_count).")
	atoms := evalFloat(t, node, "erlang:system_info(atom_count).")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	generation := l.client.Generation()

	every := scrapes / reconnects
	start := time.Now()
	var inReconnects time.Duration
	for i := 1; i <= scrapes; i++ {
		if i%every == 1 {
			// This scrape reconnects and refreshes every collector.
			began := time.Now()
			scrape()
			inReconnects += time.Since(began)
		} else {
			scrape()
		}
		if i%every == 0 {
			began := time.Now()
			reconnect()
			inReconnects += time.Since(began)
		}
		if i%2000 == 0 {
			t.Logf("soak: %d scrapes, %d reconnects, %s", i, i/every, time.Since(start).Round(time.Second))
		}
	}
	scrape()
	if got := l.client.Generation() - generation; got != reconnects {
		t.Errorf("the soak made %d connections, want %d", got, reconnects)
	}
	if after := evalFloat(t, node, "erlang:system_info(atom_count)."); after != atoms {
		t.Errorf("the node's atom count went from %v to %v across %d reconnects", atoms, after, reconnects)
	}
	// Refreshes and readers of cut connections finish in the background.
	testkit.WaitFor(t, "goroutines to settle", 10*time.Second, func() bool {
		return runtime.NumGoroutine() <= goroutines+5
	})
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	const heapBound = 4 << 20
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > heapBound {
		t.Errorf("the heap grew by %d bytes over the soak, bound %d", grown, heapBound)
	}
	t.Logf("soak: %d scrapes and %d reconnects in %s (%s of it cutting, reconnecting and refreshing); heap %d -> %d bytes; goroutines %d -> %d",
		scrapes, reconnects, time.Since(start).Round(time.Millisecond), inReconnects.Round(time.Millisecond),
		before.HeapAlloc, after.HeapAlloc, goroutines, runtime.NumGoroutine())
}
