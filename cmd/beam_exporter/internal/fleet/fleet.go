// The pool: one connection and one collector.Exporter per target, kept between probes.

package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/config"
	"github.com/beam-exporter/beam_exporter/collector"
	"github.com/beam-exporter/beam_exporter/erlnode"
)

// Options configure the pool.
type Options struct {
	Modules     map[string]config.AuthModule
	Tiers       collector.Tiers
	MaxTargets  int           // targets held at once; more are refused
	IdleTimeout time.Duration // a target not probed this long is disconnected
	// Applied to every target.
	LocalName   string // the exporter's own node name; "" for the default
	EPMDPort    int
	NetTickTime time.Duration
	LoadProbe   bool
	Logger      log.Logger
}

// Fleet pools one connection and one Exporter per target, so that the
// tier caches and the probe session survive from one scrape to the next.
// Each target has its own connection and caches: a slow or dead target
// delays nobody else's scrape.
type Fleet struct {
	opts Options

	mu      sync.Mutex
	targets map[string]*target // by node name

	refused [4]atomic.Uint64 // by index in refusalReasons
}

type target struct {
	module   string
	client   *erlnode.Client
	exporter *collector.Exporter
	// Guarded by Fleet.mu.
	lastUsed time.Time
	inUse    int
}

// Why a request is refused before any connection is opened. Each is a
// value of beam_exporter_fleet_requests_refused_total's reason label.
var (
	// ErrBadRequest: the target is missing or not name@host, or the auth
	// module is missing or unknown.
	ErrBadRequest = errors.New("bad request")
	// ErrNotAllowed: the auth module's targets do not name the node.
	ErrNotAllowed = errors.New("target not allowed")
	// ErrTooManyTargets refuses a new target when the pool is full.
	ErrTooManyTargets = errors.New("too many targets")
	// ErrModuleConflict: the node is being probed under another module.
	ErrModuleConflict = errors.New("auth module conflict")
)

// refusalReasons label the refusals counter, in the order of the errors.
var refusalReasons = []struct {
	err    error
	reason string
}{
	{ErrBadRequest, "bad_request"},
	{ErrNotAllowed, "not_allowed"},
	{ErrTooManyTargets, "too_many_targets"},
	{ErrModuleConflict, "auth_module_conflict"},
}

var refusedDesc = prometheus.NewDesc("beam_exporter_fleet_requests_refused_total",
	"Requests to /probe and /top refused before any connection was opened, by reason.", []string{"reason"}, nil)

// New checks the options; Run disconnects idle targets.
func New(opts Options) (*Fleet, error) {
	if len(opts.Modules) == 0 {
		return nil, errors.New("fleet mode needs at least one auth module")
	}
	if opts.MaxTargets < 1 {
		return nil, fmt.Errorf("the target limit must be at least 1, got %d", opts.MaxTargets)
	}
	if opts.IdleTimeout <= 0 {
		return nil, fmt.Errorf("the idle timeout must be positive, got %s", opts.IdleTimeout)
	}
	if err := opts.Tiers.Validate(); err != nil {
		return nil, err
	}
	known := collector.Names()
	for _, m := range opts.Modules {
		for _, name := range m.Collectors {
			if !slices.Contains(known, name) {
				return nil, fmt.Errorf("auth module %q: no collector named %q (there are %s)", m.Name, name, strings.Join(known, ", "))
			}
		}
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	logTargets(opts.Logger, opts.Modules)
	return &Fleet{opts: opts, targets: map[string]*target{}}, nil
}

// logTargets says at start-up which targets each auth module may be used
// for, and warns of the modules that refuse every target (a config from
// before targets existed) or accept any.
func logTargets(logger log.Logger, modules map[string]config.AuthModule) {
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		m := modules[name]
		switch {
		case m.Targets.None():
			level.Warn(logger).Log("msg", "the auth module names no targets, so /probe and /top refuse every node with it (403); list its nodes under targets: in --config.file", "auth_module", name)
		case m.Targets.Everything():
			level.Warn(logger).Log("msg", "the auth module allows every target: whoever can reach /probe can make the exporter offer this cluster's cookie to a node of their choosing; list its nodes under targets: instead", "auth_module", name)
		default:
			level.Info(logger).Log("msg", "auth module", "auth_module", name, "targets", m.Targets)
		}
		if erlnode.TrustsSystemRoots(m.TLS) {
			level.Warn(logger).Log("msg", "the auth module's TLS has no ca_file, so the nodes' certificates are checked against the system's roots: any publicly issued certificate for their hosts passes; give the private CA that signs them", "auth_module", name)
		}
	}
}

// Run disconnects targets idle for longer than the idle timeout, until ctx
// ends; then it disconnects them all.
func (f *Fleet) Run(ctx context.Context) {
	ticker := time.NewTicker(max(f.opts.IdleTimeout/4, 10*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			f.closeWhere(func(*target) bool { return true })
			return
		case <-ticker.C:
			cutoff := time.Now().Add(-f.opts.IdleTimeout)
			f.closeWhere(func(t *target) bool { return t.inUse == 0 && t.lastUsed.Before(cutoff) })
		}
	}
}

func (f *Fleet) closeWhere(drop func(*target) bool) {
	var closing []*target
	f.mu.Lock()
	for name, t := range f.targets {
		if drop(t) {
			closing = append(closing, t)
			delete(f.targets, name)
		}
	}
	f.mu.Unlock()
	for _, t := range closing {
		level.Debug(f.opts.Logger).Log("msg", "disconnecting an idle target", "node", t.client.Target())
		t.client.Close()
	}
}

// Targets lists the targets pooled right now, sorted.
func (f *Fleet) Targets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.targets))
	for name := range f.targets {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Held is a pooled target and its exporter.
type Held struct {
	Node     string
	Exporter *collector.Exporter
}

// Held lists the targets pooled right now, sorted, without marking any of
// them used: a watcher of the pool (the ClickHouse sink) must not keep a
// target from going idle. A target may be disconnected while the caller
// still holds its exporter; its calls then fail.
func (f *Fleet) Held() []Held {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Held, 0, len(f.targets))
	for name, t := range f.targets {
		out = append(out, Held{Node: name, Exporter: t.exporter})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// Resolve checks a request's target and auth module, and names the module
// to reach the target with: module may be left out when only one module is
// configured. It opens no connection: a target the module does not allow
// is refused here, before EPMD or the node hears of it.
func (f *Fleet) Resolve(target, module string) (string, error) {
	module, err := f.resolve(target, module)
	f.count(err)
	return module, err
}

func (f *Fleet) resolve(target, module string) (string, error) {
	if target == "" {
		return "", fmt.Errorf("%w: the target parameter is missing (target=name@host)", ErrBadRequest)
	}
	if _, _, err := erlnode.SplitNodeName(target); err != nil {
		return "", fmt.Errorf("%w: target: %w", ErrBadRequest, err)
	}
	if module == "" {
		if len(f.opts.Modules) != 1 {
			return "", fmt.Errorf("%w: the auth_module parameter is missing, and more than one auth module is configured", ErrBadRequest)
		}
		for name := range f.opts.Modules {
			module = name
		}
	}
	m, ok := f.opts.Modules[module]
	if !ok {
		return "", fmt.Errorf("%w: unknown auth_module %q", ErrBadRequest, module)
	}
	if !m.Targets.Allows(target) {
		level.Debug(f.opts.Logger).Log("msg", "refused a target its auth module does not allow", "node", target, "auth_module", module)
		return "", fmt.Errorf("%w: %s is not among the targets of auth module %q", ErrNotAllowed, target, module)
	}
	return module, nil
}

// count adds a refusal to its reason's counter.
func (f *Fleet) count(err error) {
	for i, r := range refusalReasons {
		if errors.Is(err, r.err) {
			f.refused[i].Add(1)
			return
		}
	}
}

// Describe and Collect make the pool a collector of its refusals, for the
// exporter's own metrics.
func (f *Fleet) Describe(ch chan<- *prometheus.Desc) { ch <- refusedDesc }

func (f *Fleet) Collect(ch chan<- prometheus.Metric) {
	for i, r := range refusalReasons {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(f.refused[i].Load()), r.reason)
	}
}

// Acquire returns the pooled target's exporter, connecting the target first
// if it is new, and a release to call when done with it. A target probed
// with another auth module than before is reconnected with the new one,
// unless it is in use. A full pool answers ErrTooManyTargets.
func (f *Fleet) Acquire(name, module string) (*collector.Exporter, func(), error) {
	t, err := f.acquire(name, module)
	if err != nil {
		f.count(err)
		return nil, nil, err
	}
	return t.exporter, func() { f.release(t) }, nil
}

func (f *Fleet) acquire(name, module string) (*target, error) {
	f.mu.Lock()
	t, ok := f.targets[name]
	if ok && t.module != module && t.inUse == 0 {
		delete(f.targets, name)
		f.mu.Unlock()
		t.client.Close()
		return f.acquire(name, module)
	}
	if ok && t.module != module {
		f.mu.Unlock()
		return nil, fmt.Errorf("%w: %s is being probed with auth module %q right now", ErrModuleConflict, name, t.module)
	}
	if !ok {
		if len(f.targets) >= f.opts.MaxTargets {
			f.mu.Unlock()
			return nil, fmt.Errorf("%w: the exporter already holds %d (--fleet.max-targets)", ErrTooManyTargets, f.opts.MaxTargets)
		}
		var err error
		if t, err = f.newTarget(name, module); err != nil {
			f.mu.Unlock()
			return nil, err
		}
		f.targets[name] = t
	}
	t.inUse++
	t.lastUsed = time.Now()
	f.mu.Unlock()
	return t, nil
}

func (f *Fleet) release(t *target) {
	f.mu.Lock()
	t.inUse--
	t.lastUsed = time.Now()
	f.mu.Unlock()
}

func (f *Fleet) newTarget(name, module string) (*target, error) {
	m := f.opts.Modules[module]
	logger := log.With(f.opts.Logger, "auth_module", module)
	collectors := collector.Enabled()
	if m.Collectors != nil {
		collectors = m.Collectors
	}
	client, err := erlnode.New(erlnode.Config{
		Target:      name,
		LocalName:   f.opts.LocalName,
		Cookie:      m.Cookie,
		TLS:         m.TLS,
		EPMDPort:    f.opts.EPMDPort,
		NetTickTime: f.opts.NetTickTime,
		LoadProbe:   f.opts.LoadProbe,
		Session:     collector.Session(collectors),
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	exporter, err := collector.NewExporterWith(client, f.opts.Tiers, collectors, log.With(logger, "node", name))
	if err != nil {
		client.Close()
		return nil, err
	}
	return &target{module: module, client: client, exporter: exporter}, nil
}
