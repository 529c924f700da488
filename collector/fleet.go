// Fleet mode: one exporter for many nodes, each collected on demand through /probe.
package collector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// FleetOptions configure the pool of targets behind /probe.
type FleetOptions struct {
	Modules     map[string]erlnode.AuthModule
	Tiers       Tiers
	MaxTargets  int           // targets held at once; more get 503
	IdleTimeout time.Duration // a target not probed this long is disconnected
	// Applied to every target.
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
	opts FleetOptions

	mu      sync.Mutex
	targets map[string]*fleetTarget // by node name
}

type fleetTarget struct {
	module   string
	client   *erlnode.Client
	exporter *Exporter
	// Guarded by Fleet.mu.
	lastUsed time.Time
	inUse    int
}

// errTooManyTargets answers a probe when the pool is full.
var errTooManyTargets = errors.New("too many targets")

// NewFleet checks the options; Run disconnects idle targets.
func NewFleet(opts FleetOptions) (*Fleet, error) {
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
	for _, m := range opts.Modules {
		for _, name := range m.Collectors {
			if _, ok := registry[name]; !ok {
				return nil, fmt.Errorf("auth module %q: no collector named %q (there are %s)", m.Name, name, strings.Join(Names(), ", "))
			}
		}
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	return &Fleet{opts: opts, targets: map[string]*fleetTarget{}}, nil
}

// Run disconnects targets idle for longer than the idle timeout, until ctx
// ends; then it disconnects them all.
func (f *Fleet) Run(ctx context.Context) {
	ticker := time.NewTicker(max(f.opts.IdleTimeout/4, 10*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			f.closeWhere(func(*fleetTarget) bool { return true })
			return
		case <-ticker.C:
			cutoff := time.Now().Add(-f.opts.IdleTimeout)
			f.closeWhere(func(t *fleetTarget) bool { return t.inUse == 0 && t.lastUsed.Before(cutoff) })
		}
	}
}

func (f *Fleet) closeWhere(drop func(*fleetTarget) bool) {
	var closing []*fleetTarget
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

// Targets lists the pooled targets, for tests and the landing page.
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

// acquire returns the pooled target, creating it if needed. A target probed
// with another auth module than before is reconnected with the new one.
func (f *Fleet) acquire(target, module string) (*fleetTarget, error) {
	f.mu.Lock()
	t, ok := f.targets[target]
	if ok && t.module != module && t.inUse == 0 {
		delete(f.targets, target)
		f.mu.Unlock()
		t.client.Close()
		return f.acquire(target, module)
	}
	if ok && t.module != module {
		f.mu.Unlock()
		return nil, fmt.Errorf("%s is being probed with auth module %q right now", target, t.module)
	}
	if !ok {
		if len(f.targets) >= f.opts.MaxTargets {
			f.mu.Unlock()
			return nil, errTooManyTargets
		}
		var err error
		if t, err = f.newTarget(target, module); err != nil {
			f.mu.Unlock()
			return nil, err
		}
		f.targets[target] = t
	}
	t.inUse++
	t.lastUsed = time.Now()
	f.mu.Unlock()
	return t, nil
}

func (f *Fleet) release(t *fleetTarget) {
	f.mu.Lock()
	t.inUse--
	t.lastUsed = time.Now()
	f.mu.Unlock()
}

func (f *Fleet) newTarget(target, module string) (*fleetTarget, error) {
	m := f.opts.Modules[module]
	logger := log.With(f.opts.Logger, "auth_module", module)
	collectors := Enabled()
	if m.Collectors != nil {
		collectors = m.Collectors
	}
	client, err := erlnode.New(erlnode.Config{
		Target:      target,
		Cookie:      m.Cookie,
		TLS:         m.TLS,
		EPMDPort:    f.opts.EPMDPort,
		NetTickTime: f.opts.NetTickTime,
		LoadProbe:   f.opts.LoadProbe,
		Session:     Session(collectors),
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	exporter, err := NewExporterWith(client, f.opts.Tiers, collectors, log.With(logger, "node", target))
	if err != nil {
		client.Close()
		return nil, err
	}
	return &fleetTarget{module: module, client: client, exporter: exporter}, nil
}

// ProbeHandler serves GET /probe?target=name@host[&auth_module=NAME]: one
// node's metrics, in a fresh registry, with the scrape deadline from the
// request. The exporter's own metrics stay on /metrics.
func (f *Fleet) ProbeHandler(hopts HandlerOptions) http.Handler {
	errorLog := promhttpLogger{f.opts.Logger}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target, module, err := f.parseProbe(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		t, err := f.acquire(target, module)
		if err != nil {
			status, err := f.acquireFailure(err)
			http.Error(w, err.Error(), status)
			return
		}
		defer f.release(t)
		ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout(r, hopts))
		defer cancel()
		reg := prometheus.NewRegistry()
		reg.MustRegister(t.exporter.Scrape(ctx), t.exporter.ConnectionErrors())
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog:      errorLog,
			ErrorHandling: promhttp.ContinueOnError,
		}).ServeHTTP(w, r)
	})
}

// acquireFailure is the HTTP status and message for an acquire error: the
// pool is full, or the target is in use under another auth module.
func (f *Fleet) acquireFailure(err error) (int, error) {
	if errors.Is(err, errTooManyTargets) {
		return http.StatusServiceUnavailable, fmt.Errorf("%w: the exporter already holds %d (--fleet.max-targets)", err, f.opts.MaxTargets)
	}
	return http.StatusConflict, err
}

// parseProbe reads and checks target and auth_module. auth_module may be
// left out when only one module is configured.
func (f *Fleet) parseProbe(r *http.Request) (target, module string, err error) {
	q := r.URL.Query()
	target = q.Get("target")
	if target == "" {
		return "", "", errors.New("the target parameter is missing (target=name@host)")
	}
	if _, _, err := erlnode.SplitNodeName(target); err != nil {
		return "", "", fmt.Errorf("target: %w", err)
	}
	module = q.Get("auth_module")
	if module == "" {
		if len(f.opts.Modules) != 1 {
			return "", "", errors.New("the auth_module parameter is missing, and more than one auth module is configured")
		}
		for name := range f.opts.Modules {
			module = name
		}
	}
	if _, ok := f.opts.Modules[module]; !ok {
		return "", "", fmt.Errorf("unknown auth_module %q", module)
	}
	return target, module, nil
}
