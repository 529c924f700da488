package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/config"
	"github.com/beam-exporter/beam_exporter/collector"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

var tiers = collector.Tiers{Fast: time.Second, Slow: time.Second}

func TestNewRefuses(t *testing.T) {
	one := map[string]config.AuthModule{"one": {Name: "one", Cookie: "c"}}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no module", Options{Tiers: tiers, MaxTargets: 1, IdleTimeout: time.Minute}, "at least one auth module"},
		{"no room", Options{Modules: one, Tiers: tiers, MaxTargets: 0, IdleTimeout: time.Minute}, "target limit"},
		{"no idle timeout", Options{Modules: one, Tiers: tiers, MaxTargets: 1}, "idle timeout"},
		{"bad tiers", Options{Modules: one, Tiers: collector.Tiers{Fast: time.Minute, Slow: time.Second}, MaxTargets: 1, IdleTimeout: time.Minute}, "slow tier"},
		{"unknown collector", Options{
			Modules: map[string]config.AuthModule{"two": {Name: "two", Cookie: "c", Collectors: []string{"memory", "proceses"}}},
			Tiers:   tiers, MaxTargets: 1, IdleTimeout: time.Minute,
		}, `auth module "two": no collector named "proceses"`},
	} {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestResolve(t *testing.T) {
	hosts, err := config.ParseTargets("*@host", "b@other")
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]config.AuthModule{
		"one":  {Name: "one", Cookie: "c", Targets: hosts},
		"two":  {Name: "two", Cookie: "d", Targets: hosts},
		"none": {Name: "none", Cookie: "e"},
	}
	several, err := New(Options{Modules: modules, Tiers: tiers, MaxTargets: 1, IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	single, err := New(Options{Modules: map[string]config.AuthModule{"one": modules["one"]}, Tiers: tiers, MaxTargets: 1, IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		f              *Fleet
		target, module string
		module2        string // the module Resolve names, when it succeeds
		err            error
		says           string
	}{
		{name: "given", f: several, target: "a@host", module: "two", module2: "two"},
		{name: "the only one", f: single, target: "a@host", module2: "one"},
		{name: "another pattern", f: several, target: "b@other", module: "one", module2: "one"},
		{name: "no target", f: several, module: "one", err: ErrBadRequest, says: "target parameter is missing"},
		{name: "target without host", f: several, target: "nohost", module: "one", err: ErrBadRequest, says: "no @host part"},
		{name: "unknown module", f: several, target: "a@host", module: "three", err: ErrBadRequest, says: `unknown auth_module "three"`},
		{name: "no module among several", f: several, target: "a@host", err: ErrBadRequest, says: "auth_module parameter is missing"},
		{name: "a host the module does not name", f: several, target: "a@other", module: "one", err: ErrNotAllowed, says: `a@other is not among the targets of auth module "one"`},
		{name: "a module without targets", f: several, target: "a@host", module: "none", err: ErrNotAllowed, says: `auth module "none"`},
	} {
		got, err := tc.f.Resolve(tc.target, tc.module)
		switch {
		case tc.err == nil && (err != nil || got != tc.module2):
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.module2)
		case tc.err != nil && (!errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.says)):
			t.Errorf("%s: error %v, want %v saying %q", tc.name, err, tc.err, tc.says)
		}
	}
}

// The pool refuses a target beyond its limit, and a target in use under
// another auth module; nothing here connects.
func TestAcquire(t *testing.T) {
	f, err := New(Options{
		Modules: map[string]config.AuthModule{"one": {Name: "one", Cookie: "c"}, "two": {Name: "two", Cookie: "d"}},
		Tiers:   tiers, MaxTargets: 1, IdleTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Run disconnects every target once its context has ended.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f.Run(ctx)
	})
	e, release, err := f.Acquire("fleet_acquire_a@127.0.0.1", "one")
	if err != nil || e == nil {
		t.Fatalf("the first target: %v", err)
	}
	if _, _, err := f.Acquire("fleet_acquire_b@127.0.0.1", "one"); !errors.Is(err, ErrTooManyTargets) || !strings.Contains(err.Error(), "--fleet.max-targets") {
		t.Errorf("a second target beyond the limit: %v", err)
	}
	if _, _, err := f.Acquire("fleet_acquire_a@127.0.0.1", "two"); err == nil || errors.Is(err, ErrTooManyTargets) {
		t.Errorf("the target in use, under another module: %v", err)
	}
	release()
	again, releaseAgain, err := f.Acquire("fleet_acquire_a@127.0.0.1", "two")
	if err != nil || again == e {
		t.Fatalf("the released target under another module is not reconnected: %v", err)
	}
	releaseAgain()
	if got := f.Targets(); len(got) != 1 || got[0] != "fleet_acquire_a@127.0.0.1" {
		t.Errorf("pooled %v", got)
	}
}

// Held lists what the pool holds, and watching the pool that way does not
// keep a target from going idle; nothing here connects.
func TestHeldDoesNotKeepTargets(t *testing.T) {
	f, err := New(Options{
		Modules: map[string]config.AuthModule{"one": {Name: "one", Cookie: "c"}},
		Tiers:   tiers, MaxTargets: 2, IdleTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	e, release, err := f.Acquire("fleet_held_a@127.0.0.1", "one")
	if err != nil {
		t.Fatal(err)
	}
	release()
	if held := f.Held(); len(held) != 1 || held[0].Node != "fleet_held_a@127.0.0.1" || held[0].Exporter != e {
		t.Fatalf("held %+v", held)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	testkit.WaitFor(t, "the idle target to be disconnected while watched", 10*time.Second, func() bool {
		return len(f.Held()) == 0
	})
}
