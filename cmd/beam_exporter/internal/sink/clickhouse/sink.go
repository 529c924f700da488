// The sink: samples the rankings of the nodes it watches on its own clock and writes them to ClickHouse.

package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/fleet"
	"github.com/beam-exporter/beam_exporter/collector"
)

// Config is the sink's configuration, from Flags.Config.
type Config struct {
	URL               *url.URL
	Database, Table   string
	User, Password    string
	PasswordSource    string // "environment", "none" or the file, for the log
	PasswordExposed   bool   // the file can be read by others than its owner
	Interval, Timeout time.Duration
	BufferRows        int
	CreateTable       bool
	Deployment, Pod   string
	// RankingTimeout bounds one ranking of a node; main gives it the
	// default scrape deadline, so that a scrape joining a ranking the sink
	// started waits no shorter than for one of its own.
	RankingTimeout time.Duration
	Logger         log.Logger
}

// Ranker ranks a node's processes no older than asked; *collector.Exporter is one.
type Ranker interface {
	TopProcessesWithin(ctx context.Context, maxAge time.Duration) (collector.TopSnapshot, error)
}

// Watch is what the sink samples: the sidecar's node, if any, and every
// node the fleet's pool holds, if there is a pool.
type Watch struct {
	NodeName string
	Node     Ranker
	Fleet    *fleet.Fleet
}

type watched struct {
	name   string
	ranker Ranker
}

func (w Watch) nodes() []watched {
	var out []watched
	if w.Node != nil {
		out = append(out, watched{w.NodeName, w.Node})
	}
	if w.Fleet != nil {
		for _, h := range w.Fleet.Held() {
			if h.Node != w.NodeName || w.Node == nil {
				out = append(out, watched{h.Node, h.Exporter})
			}
		}
	}
	return out
}

// Sink samples rankings into a bounded buffer and writes the buffer to
// ClickHouse in batches. Sampling goes through each node's tier cache and
// never waits for ClickHouse, so the sink neither slows nor fails a scrape.
type Sink struct {
	cfg    Config
	logger log.Logger
	server *server
	buf    *buffer
	stats  stats

	// Written by the writer alone.
	shape   *tableShape // nil until the table has been found to fit
	lastErr string      // the last failure logged, so each is logged once

	mu       sync.Mutex
	sampling map[string]bool   // nodes with a ranking under way
	lastSec  map[string]int64  // the second of each node's last sample
	rankErr  map[string]string // each node's last ranking failure, logged once
	kick     chan struct{}     // tells the writer rows are waiting
}

// New checks the server and the table, creating the table when asked. A
// failure that no waiting mends (credentials, a missing or misfit table,
// something else than ClickHouse at the URL) is returned, and the exporter
// should exit; a server that does not answer is logged, and checked again
// before the first insert.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	if cfg.RankingTimeout <= 0 {
		cfg.RankingTimeout = 10 * time.Second
	}
	s := &Sink{
		cfg:    cfg,
		logger: log.With(cfg.Logger, "sink", "clickhouse"),
		server: &server{base: cfg.URL, user: cfg.User, password: cfg.Password,
			client: &http.Client{Timeout: cfg.Timeout}},
		buf:      newBuffer(cfg.BufferRows),
		sampling: map[string]bool{},
		lastSec:  map[string]int64{},
		rankErr:  map[string]string{},
		kick:     make(chan struct{}, 1),
	}
	if cfg.PasswordExposed {
		level.Warn(s.logger).Log("msg", "the ClickHouse password file can be read by other users", "file", cfg.PasswordSource)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := s.check(ctx); err != nil {
		if kindOf(err).fatalAtStart() {
			return nil, fmt.Errorf("--sink.clickhouse.url: %w", err)
		}
		s.failed(err)
		level.Warn(s.logger).Log("msg", "ClickHouse does not answer; the sink buffers rows and checks the table again before it writes", "err", err)
	}
	return s, nil
}

// check reads the server's version and finds the table fit, creating it
// when asked and missing.
func (s *Sink) check(ctx context.Context) error {
	answer, err := s.server.query(ctx, "SELECT version()")
	if err != nil {
		return fmt.Errorf("asking ClickHouse its version: %w", err)
	}
	v, err := parseVersion(answer)
	if err != nil {
		return err
	}
	db, table := s.cfg.Database, s.cfg.Table
	shape, found, err := inspect(ctx, s.server, db, table)
	if err != nil {
		return err
	}
	if !found {
		if !s.cfg.CreateTable {
			return &requestError{badTable, fmt.Errorf("table %s.%s does not exist on ClickHouse %s; %s", db, table, answer, createAdvice)}
		}
		variant, err := create(ctx, s.server, v, db, table)
		if err != nil {
			return err
		}
		level.Info(s.logger).Log("msg", "created the table", "table", db+"."+table, "variant", variant, "clickhouse", answer)
		if shape, found, err = inspect(ctx, s.server, db, table); err != nil {
			return err
		} else if !found {
			return &requestError{badTable, fmt.Errorf("table %s.%s is not there after creating it", db, table)}
		}
	}
	s.shape = &shape
	dedup := "yes"
	if !shape.dedup {
		dedup = "no: a batch sent again after a timeout can be written twice (observability.md gives the query that counts rows once)"
	}
	level.Info(s.logger).Log("msg", "writing top processes to ClickHouse", "table", db+"."+table, "clickhouse", answer,
		"timestamps", map[timeFormat]string{unixSeconds: "seconds", isoMillis: "milliseconds"}[shape.format],
		"retries_deduplicated", dedup, "password", s.cfg.PasswordSource)
	return nil
}

// Start runs the sink until ctx ends; the channel closes once the sink has
// made its last attempt to write what it holds.
func (s *Sink) Start(ctx context.Context, w Watch) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx, w)
	}()
	return done
}

func (s *Sink) run(ctx context.Context, w Watch) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.write(ctx)
	}()
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()
	for {
		s.round(ctx, w, &wg)
		select {
		case <-ctx.Done():
			wg.Wait()
			s.lastWrite()
			return
		case <-ticker.C:
		}
	}
}

// round starts a ranking of every watched node that has none under way,
// and tells the writer once they have all answered or an interval has
// passed: a slow node delays nobody's sample, and its rows go with the
// next round's.
func (s *Sink) round(ctx context.Context, w Watch, wg *sync.WaitGroup) {
	nodes := w.nodes()
	var round sync.WaitGroup
	s.mu.Lock()
	s.forgetOthers(nodes)
	for _, n := range nodes {
		if s.sampling[n.name] {
			continue
		}
		s.sampling[n.name] = true
		round.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer round.Done()
			s.sample(ctx, n)
			s.mu.Lock()
			delete(s.sampling, n.name)
			s.mu.Unlock()
		}()
	}
	s.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		answered := make(chan struct{})
		go func() { round.Wait(); close(answered) }()
		timer := time.NewTimer(s.cfg.Interval)
		defer timer.Stop()
		select {
		case <-answered:
		case <-timer.C:
		case <-ctx.Done():
		}
		s.wake()
	}()
}

// forgetOthers drops what the sink remembers of nodes it no longer
// watches, so that fleet churn does not grow it. Callers hold s.mu.
func (s *Sink) forgetOthers(nodes []watched) {
	keep := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		keep[n.name] = true
	}
	for name := range s.lastSec {
		if !keep[name] {
			delete(s.lastSec, name)
		}
	}
	for name := range s.rankErr {
		if !keep[name] {
			delete(s.rankErr, name)
		}
	}
}

// sample takes one ranking of n, no older than half an interval (so that a
// ranking taken for the previous round is never taken again, while one a
// scrape has just taken is), and buffers its rows. At most one sample of a
// node per second is kept: rows are told apart by (node, timestamp,
// metric, rank), and the portable table's timestamps are whole seconds.
func (s *Sink) sample(ctx context.Context, n watched) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RankingTimeout)
	defer cancel()
	snap, err := n.ranker.TopProcessesWithin(ctx, s.cfg.Interval/2)
	if errors.Is(err, collector.ErrProcessesDisabled) {
		return // an auth module without the processes collector: nothing to write
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil && ctx.Err() != context.DeadlineExceeded {
			return // shutting down
		}
		s.stats.rankingFailures.Add(1)
		if msg := err.Error(); msg != s.rankErr[n.name] {
			s.rankErr[n.name] = msg
			level.Warn(s.logger).Log("msg", "cannot rank the node's processes", "node", n.name, "err", err)
		}
		return
	}
	if s.rankErr[n.name] != "" {
		level.Info(s.logger).Log("msg", "ranking the node's processes again", "node", n.name)
		delete(s.rankErr, n.name)
	}
	sec := snap.Time.Unix()
	if last, ok := s.lastSec[n.name]; ok && last >= sec {
		return
	}
	s.lastSec[n.name] = sec
	rows := rowsOf(snap, n.name, s.cfg.Deployment, s.cfg.Pod)
	s.buf.add(rows)
}

func (s *Sink) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// write sends what the buffer holds whenever a round has ended, until ctx
// ends. A failure waits for the next round: the interval is the retry
// delay, whatever the outage.
func (s *Sink) write(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			s.flush(ctx)
		}
	}
}

// lastWrite gives what the buffer holds one more try, briefly, at shutdown.
func (s *Sink) lastWrite() {
	ctx, cancel := context.WithTimeout(context.Background(), min(s.cfg.Timeout, 5*time.Second))
	defer cancel()
	s.flush(ctx)
	if _, _, _, buffered := s.buf.counts(); buffered > 0 {
		level.Warn(s.logger).Log("msg", "rows not written at shutdown", "rows", buffered)
	}
}

// flush writes batches until the buffer is empty or an insert fails.
func (s *Sink) flush(ctx context.Context) {
	if s.shape == nil {
		if err := s.check(ctx); err != nil {
			s.failed(err)
			return
		}
	}
	for ctx.Err() == nil {
		b := s.buf.take(s.shape.format)
		if b == nil {
			return
		}
		err := s.insert(ctx, b)
		kind := kindOf(err)
		if dropped := s.buf.done(b, err == nil, err != nil && (kind == rejected || kind == notClickHouse)); dropped > 0 {
			level.Warn(s.logger).Log("msg", "dropped a batch ClickHouse refused again and again", "rows", dropped, "err", err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return // shutting down: lastWrite tries once more
			}
			s.failed(err)
			if kind == badTable {
				s.shape = nil // recreated or altered: look again before the next insert
			}
			return
		}
		s.stats.lastWrite.Store(time.Now().UnixNano())
		if s.lastErr != "" {
			level.Info(s.logger).Log("msg", "writing to ClickHouse again")
			s.lastErr = ""
		}
	}
}

func (s *Sink) insert(ctx context.Context, b *batch) error {
	s.stats.inserts.Add(1)
	settings := url.Values{}
	if b.format == isoMillis {
		settings.Set("date_time_input_format", "best_effort")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	statement := fmt.Sprintf("INSERT INTO %s.%s FORMAT JSONEachRow", ident(s.cfg.Database), ident(s.cfg.Table))
	if err := s.server.insert(ctx, statement, settings, b.body); err != nil {
		if mayHaveWritten(err) {
			s.stats.unanswered.Add(1)
		}
		return fmt.Errorf("inserting %d rows: %w", len(b.rows), err)
	}
	return nil
}

// failed counts a failure by its reason and logs it when it differs from
// the last one.
func (s *Sink) failed(err error) {
	s.stats.failures[kindOf(err)].Add(1)
	if msg := err.Error(); msg != s.lastErr {
		s.lastErr = msg
		level.Warn(s.logger).Log("msg", "cannot write to ClickHouse; rows stay buffered", "reason", kindOf(err), "err", err)
	}
}
