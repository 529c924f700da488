// The pool: one connection and one collector.Exporter per target, kept between probes.

package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

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
}

type target struct {
	module   string
	client   *erlnode.Client
	exporter *collector.Exporter
	// Guarded by Fleet.mu.
	lastUsed time.Time
	inUse    int
}

// ErrTooManyTargets refuses a new target when the pool is full.
var ErrTooManyTargets = errors.New("too many targets")

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
	return &Fleet{opts: opts, targets: map[string]*target{}}, nil
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

// Resolve checks a request's target and auth module, and names the module
// to reach the target with: module may be left out when only one module is
// configured.
func (f *Fleet) Resolve(target, module string) (string, error) {
	if target == "" {
		return "", errors.New("the target parameter is missing (target=name@host)")
	}
	if _, _, err := erlnode.SplitNodeName(target); err != nil {
		return "", fmt.Errorf("target: %w", err)
	}
	if module == "" {
		if len(f.opts.Modules) != 1 {
			return "", errors.New("the auth_module parameter is missing, and more than one auth module is configured")
		}
		for name := range f.opts.Modules {
			module = name
		}
	}
	if _, ok := f.opts.Modules[module]; !ok {
		return "", fmt.Errorf("unknown auth_module %q", module)
	}
	return module, nil
}

// Acquire returns the pooled target's exporter, connecting the target first
// if it is new, and a release to call when done with it. A target probed
// with another auth module than before is reconnected with the new one,
// unless it is in use. A full pool answers ErrTooManyTargets.
func (f *Fleet) Acquire(name, module string) (*collector.Exporter, func(), error) {
	t, err := f.acquire(name, module)
	if err != nil {
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
		return nil, fmt.Errorf("%s is being probed with auth module %q right now", name, t.module)
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
