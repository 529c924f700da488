package collector

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeTarget is a node whose connection the test switches on and off.
type fakeTarget struct {
	fakeNode
	up         atomic.Bool
	generation atomic.Uint64
}

func (f *fakeTarget) EnsureConnected(context.Context) error {
	if !f.up.Load() {
		return errors.New("down")
	}
	return nil
}
func (f *fakeTarget) Up() bool                            { return f.up.Load() }
func (f *fakeTarget) Generation() uint64                  { return f.generation.Load() }
func (f *fakeTarget) ConnectionErrors() map[string]uint64 { return nil }

var countingDesc = prometheus.NewDesc("beam_test_refreshes", "Refreshes so far.", nil, nil)

// countingCollector counts its refreshes and can be made slow, failing, or
// panicking after it sent its metric.
type countingCollector struct {
	refreshes atomic.Int64
	delay     time.Duration
	fail      bool
	panics    bool
}

func (c *countingCollector) Update(ctx context.Context, _ Node, ch chan<- prometheus.Metric) error {
	n := c.refreshes.Add(1)
	select {
	case <-time.After(c.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.fail {
		return errors.New("broken")
	}
	ch <- prometheus.MustNewConstMetric(countingDesc, prometheus.GaugeValue, float64(n))
	if c.panics {
		panic("a decoder bug")
	}
	return nil
}

func newTestExporter(target Target, ttl time.Duration, collectors map[string]Collector) *Exporter {
	e := &Exporter{target: target, logger: log.NewNopLogger()}
	for name, c := range collectors {
		e.add(name, ttl, c)
	}
	return e
}

// A scrape that comes at the tier's own interval gets fresh values: the
// cache lets values go a tenth of the tier (at most 1 s) before their age
// limit, because each refresh starts a little after the scrape that asked
// for it.
func TestCacheRefreshesAtTheTiersInterval(t *testing.T) {
	for tier, want := range map[time.Duration]time.Duration{
		15 * time.Second: 14 * time.Second,
		30 * time.Second: 29 * time.Second,
		2 * time.Second:  1800 * time.Millisecond,
		time.Millisecond: 900 * time.Microsecond,
	} {
		if got := fresh(tier); got != want {
			t.Errorf("a %s tier serves from cache for %s, want %s", tier, got, want)
		}
	}
	target := &fakeTarget{}
	target.up.Store(true)
	target.generation.Store(1)
	c := &countingCollector{}
	e := newTestExporter(target, 2*time.Second, map[string]Collector{"counting": c})
	testutil.CollectAndCount(e.Scrape(context.Background()))
	testutil.CollectAndCount(e.Scrape(context.Background()))
	if got := c.refreshes.Load(); got != 1 {
		t.Fatalf("two scrapes at once made %d refreshes, want 1", got)
	}
	time.Sleep(1850 * time.Millisecond) // past 1.8 s, short of the 2 s tier
	testutil.CollectAndCount(e.Scrape(context.Background()))
	if got := c.refreshes.Load(); got != 2 {
		t.Fatalf("a scrape 1.85 s into a 2 s tier made %d refreshes in all, want 2", got)
	}
}

func TestCacheServesWithinTier(t *testing.T) {
	target := &fakeTarget{}
	target.up.Store(true)
	target.generation.Store(1)
	c := &countingCollector{}
	e := newTestExporter(target, 200*time.Millisecond, map[string]Collector{"counting": c})

	testutil.CollectAndCount(e.Scrape(context.Background()))
	testutil.CollectAndCount(e.Scrape(context.Background()))
	if got := c.refreshes.Load(); got != 1 {
		t.Fatalf("two scrapes within the tier made %d refreshes, want 1", got)
	}
	time.Sleep(250 * time.Millisecond)
	testutil.CollectAndCount(e.Scrape(context.Background()))
	if got := c.refreshes.Load(); got != 2 {
		t.Fatalf("a scrape after the tier made %d refreshes in all, want 2", got)
	}
	// A new connection invalidates the cache at once.
	target.generation.Store(2)
	testutil.CollectAndCount(e.Scrape(context.Background()))
	if got := c.refreshes.Load(); got != 3 {
		t.Fatalf("a scrape on a new connection made %d refreshes in all, want 3", got)
	}
}

func TestConcurrentScrapesShareOneRefresh(t *testing.T) {
	target := &fakeTarget{}
	target.up.Store(true)
	c := &countingCollector{delay: 100 * time.Millisecond}
	e := newTestExporter(target, time.Minute, map[string]Collector{"counting": c})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n := testutil.CollectAndCount(e.Scrape(context.Background()), "beam_test_refreshes"); n != 1 {
				t.Errorf("a scrape saw %d refresh series, want 1", n)
			}
		}()
	}
	wg.Wait()
	if got := c.refreshes.Load(); got != 1 {
		t.Fatalf("50 concurrent scrapes made %d refreshes, want 1", got)
	}
}

func TestDownNodeExportsOnlyUp(t *testing.T) {
	target := &fakeTarget{}
	c := &countingCollector{}
	e := newTestExporter(target, time.Minute, map[string]Collector{"counting": c})
	want := `
# HELP beam_up Whether the exporter is connected to the node (1) or not (0). When 0, only beam_up and beam_connection_errors_total are exported.
# TYPE beam_up gauge
beam_up 0
`
	if err := testutil.CollectAndCompare(e.Scrape(context.Background()), strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	// Cached values of a connection that went away are never served.
	target.up.Store(true)
	testutil.CollectAndCount(e.Scrape(context.Background()))
	target.up.Store(false)
	if err := testutil.CollectAndCompare(e.Scrape(context.Background()), strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestFailingAndSlowCollectorsOnlyFailThemselves(t *testing.T) {
	target := &fakeTarget{}
	target.up.Store(true)
	e := newTestExporter(target, time.Minute, map[string]Collector{
		"good":   &countingCollector{},
		"broken": &countingCollector{fail: true},
		"slow":   &countingCollector{delay: time.Minute},
		// A panic fails its collector, not the exporter, and what it sent
		// before is dropped.
		"panicking": &countingCollector{panics: true},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	want := `
# HELP beam_scrape_collector_success Whether the collector's values in this scrape are valid (1) or it failed or is unavailable (0).
# TYPE beam_scrape_collector_success gauge
beam_scrape_collector_success{collector="broken"} 0
beam_scrape_collector_success{collector="good"} 1
beam_scrape_collector_success{collector="panicking"} 0
beam_scrape_collector_success{collector="slow"} 0
# HELP beam_test_refreshes Refreshes so far.
# TYPE beam_test_refreshes gauge
beam_test_refreshes 1
# HELP beam_up Whether the exporter is connected to the node (1) or not (0). When 0, only beam_up and beam_connection_errors_total are exported.
# TYPE beam_up gauge
beam_up 1
`
	start := time.Now()
	if err := testutil.CollectAndCompare(e.Scrape(ctx), strings.NewReader(want),
		"beam_scrape_collector_success", "beam_test_refreshes", "beam_up"); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("the scrape took %s despite its 200ms deadline", elapsed)
	}
}
