// The umbrella collector: connection state, tier caches, and per-collector health.

package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
)

// Target is a node as the exporter sees it: something to collect from, and a
// connection that may be up or down. *erlnode.Client implements it.
type Target interface {
	Node
	EnsureConnected(ctx context.Context) error
	Up() bool
	ConnectionErrors() map[string]uint64
}

var (
	upDesc = prometheus.NewDesc(namespace+"_up",
		"Whether the exporter is connected to the node (1) or not (0). When 0, only beam_up and beam_connection_errors_total are exported.", nil, nil)
	durationDesc = prometheus.NewDesc(namespace+"_scrape_collector_duration_seconds",
		"How long the collector's last refresh against the node took. Refreshes happen at most once per tier.", []string{"collector"}, nil)
	successDesc = prometheus.NewDesc(namespace+"_scrape_collector_success",
		"Whether the collector's values in this scrape are valid (1) or it failed or is unavailable (0).", []string{"collector"}, nil)
	connErrorsDesc = prometheus.NewDesc(namespace+"_connection_errors_total",
		"Failed attempts to connect to the node, by reason.", []string{"reason"}, nil)
	sessionsLostDesc = prometheus.NewDesc(namespace+"_probe_sessions_lost_total",
		"Probe sessions found ended on the node (killed, or purged with the probe) while the connection stayed up; each was replaced on the refresh that found it.", nil, nil)
)

// Exporter holds the enabled collectors and their caches for one node.
type Exporter struct {
	target     Target
	logger     log.Logger
	collectors []*cachedCollector
	// ranker is the collector whose ranking TopProcesses serves, and
	// ranking its cache; both are nil when no such collector is enabled.
	ranker  ranker
	ranking *cachedCollector
}

// NewExporter builds the collectors enabled by the flags.
func NewExporter(target Target, tiers Tiers, logger log.Logger) (*Exporter, error) {
	return NewExporterWith(target, tiers, Enabled(), logger)
}

// NewExporterWith builds the named collectors, whatever the flags say: an
// auth module's own set, or one collector alone for the benchmark.
func NewExporterWith(target Target, tiers Tiers, names []string, logger log.Logger) (*Exporter, error) {
	if err := tiers.Validate(); err != nil {
		return nil, err
	}
	e := &Exporter{target: target, logger: logger}
	for _, name := range names {
		reg, ok := registry[name]
		if !ok {
			return nil, fmt.Errorf("no collector named %q", name)
		}
		e.add(name, tiers.of(reg.tier), reg.factory())
	}
	e.shareScan()
	return e, nil
}

// shareScan has the processes collector's scan sum the processes by group
// when process_groups is enabled beside it, and gives process_groups that
// scan to read. Without the processes collector, process_groups is
// unavailable rather than scanning the node a second way.
func (e *Exporter) shareScan() {
	for _, cc := range e.collectors {
		groups, ok := cc.collector.(*processGroupsCollector)
		if !ok {
			continue
		}
		if p, ok := e.ranker.(*processesCollector); ok {
			p.groupsTopK = *processGroupsTopK
			groups.scan = e.scan
		}
	}
}

// add puts c under name, cached for ttl, among the exporter's collectors.
func (e *Exporter) add(name string, ttl time.Duration, c Collector) {
	cc := &cachedCollector{name: name, ttl: ttl, collector: c, logger: log.With(e.logger, "collector", name)}
	e.collectors = append(e.collectors, cc)
	if r, ok := c.(ranker); ok {
		e.ranker, e.ranking = r, cc
	}
}

// Scrape returns a prometheus.Collector bound to one scrape's context, whose
// deadline every call to the node honours.
func (e *Exporter) Scrape(ctx context.Context) prometheus.Collector {
	return &scrape{e: e, ctx: ctx}
}

// sessionCounter is a Target that replaces the probe sessions it finds
// ended (*erlnode.Client).
type sessionCounter interface{ SessionsLost() uint64 }

type scrape struct {
	e   *Exporter
	ctx context.Context
}

// Describe sends nothing: the families depend on the node (lock counters,
// for one), so this is an unchecked collector.
func (s *scrape) Describe(chan<- *prometheus.Desc) {}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	t := s.e.target
	connected := t.EnsureConnected(s.ctx) == nil && t.Up()
	// Read after the attempt, so that a failure is counted in the very
	// response that reports it.
	for reason, n := range t.ConnectionErrors() {
		ch <- prometheus.MustNewConstMetric(connErrorsDesc, prometheus.CounterValue, float64(n), reason)
	}
	if !connected {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	generation := t.Generation()

	// Collect everything first: if the connection drops meanwhile, nothing
	// of it may be served, and what is already sent cannot be taken back.
	var mu sync.Mutex
	var out []prometheus.Metric
	var wg sync.WaitGroup
	for _, cc := range s.e.collectors {
		wg.Add(1)
		go func(cc *cachedCollector) {
			defer wg.Done()
			metrics, duration, err := cc.get(s.ctx, t)
			success := 1.0
			if err != nil {
				success = 0
				// An unavailable collector keeps what it sent before it
				// said so: the reason, such as sysmon's owner="other".
				if !errors.Is(err, errUnavailable) {
					metrics = nil
				}
			}
			mu.Lock()
			defer mu.Unlock()
			out = append(out, metrics...)
			out = append(out,
				prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, duration.Seconds(), cc.name),
				prometheus.MustNewConstMetric(successDesc, prometheus.GaugeValue, success, cc.name))
		}(cc)
	}
	wg.Wait()

	if !t.Up() || t.Generation() != generation {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	if sc, ok := t.(sessionCounter); ok {
		ch <- prometheus.MustNewConstMetric(sessionsLostDesc, prometheus.CounterValue, float64(sc.SessionsLost()))
	}
	for _, m := range out {
		ch <- m
	}
}

// cachedCollector serves a collector's metrics from cache within its tier and
// makes concurrent scrapes share one refresh, so that no call to the node is
// ever made twice for the same tier.
type cachedCollector struct {
	name      string
	ttl       time.Duration
	collector Collector
	logger    log.Logger

	mu       sync.Mutex
	cached   *refresh
	inflight *refresh
	// lastErr avoids one log line per scrape for a persistent failure.
	lastErr string
}

// fresh is how long a tier's values are served from cache: the tier, less
// a tenth of it (at most a second). A refresh starts when a scrape arrives,
// so Prometheus scraping every 15 s finds the 15 s tier's values a few
// milliseconds either side of their age limit; without the margin half of
// its scrapes would get the previous values again.
func fresh(tier time.Duration) time.Duration {
	return tier - min(tier/10, time.Second)
}

type refresh struct {
	done       chan struct{}
	generation uint64
	started    time.Time
	duration   time.Duration
	metrics    []prometheus.Metric
	err        error
}

func (cc *cachedCollector) get(ctx context.Context, node Node) ([]prometheus.Metric, time.Duration, error) {
	return cc.getWithin(ctx, node, cc.ttl)
}

// getWithin is get, serving from cache only what is younger than maxAge
// (and than the tier); a refresh it starts is the tier's, shared as usual.
func (cc *cachedCollector) getWithin(ctx context.Context, node Node, maxAge time.Duration) ([]prometheus.Metric, time.Duration, error) {
	generation := node.Generation()
	cc.mu.Lock()
	if r := cc.cached; r != nil && r.generation == generation && time.Since(r.started) < min(maxAge, fresh(cc.ttl)) {
		cc.mu.Unlock()
		return r.metrics, r.duration, nil
	}
	r := cc.inflight
	if r == nil || r.generation != generation {
		r = &refresh{done: make(chan struct{}), generation: generation, started: time.Now()}
		cc.inflight = r
		// The refresh outlives a scrape that gives up waiting, so that the
		// scrapes sharing it still get its result; it keeps the deadline.
		rctx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
		if d, ok := ctx.Deadline(); ok {
			rctx, cancel = context.WithDeadline(rctx, d)
		}
		go func() {
			defer cancel()
			cc.run(rctx, node, r)
		}()
	}
	cc.mu.Unlock()

	select {
	case <-r.done:
		return r.metrics, r.duration, r.err
	case <-ctx.Done():
		return nil, time.Since(r.started), ctx.Err()
	}
}

// update runs the collector's Update, turning a panic into an error: in
// fleet mode one node's reply must never take down the exporter and every
// other node's monitoring with it. The decoders refuse what they cannot
// use, so a panic here is a bug, logged with the collector's failure.
func (cc *cachedCollector) update(ctx context.Context, node Node, ch chan<- prometheus.Metric) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the collector panicked (a bug, please report it): %v", r)
		}
	}()
	return cc.collector.Update(ctx, node, ch)
}

func (cc *cachedCollector) run(ctx context.Context, node Node, r *refresh) {
	ch := make(chan prometheus.Metric)
	var metrics []prometheus.Metric
	collected := make(chan struct{})
	go func() {
		for m := range ch {
			metrics = append(metrics, m)
		}
		close(collected)
	}()
	err := cc.update(ctx, node, ch)
	close(ch)
	<-collected

	r.duration = time.Since(r.started)
	r.metrics, r.err = metrics, err

	cc.mu.Lock()
	if cc.inflight == r {
		cc.inflight = nil
	}
	if err == nil {
		cc.cached = r
		if cc.lastErr != "" {
			level.Info(cc.logger).Log("msg", "collector works again")
		}
		cc.lastErr = ""
	} else if msg := err.Error(); msg != cc.lastErr {
		cc.lastErr = msg
		lvl := level.Warn
		if errors.Is(err, errUnavailable) {
			lvl = level.Info
		}
		lvl(cc.logger).Log("msg", "collector failed", "err", err)
	}
	cc.mu.Unlock()
	close(r.done)
}
