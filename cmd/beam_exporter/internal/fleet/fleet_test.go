package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/config"
	"github.com/beam-exporter/beam_exporter/collector"
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
	modules := map[string]config.AuthModule{"one": {Name: "one", Cookie: "c"}, "two": {Name: "two", Cookie: "d"}}
	two, err := New(Options{Modules: modules, Tiers: tiers, MaxTargets: 1, IdleTimeout: time.Minute})
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
		want           string // the module, or what the error says
	}{
		{"given", two, "a@host", "two", "two"},
		{"the only one", single, "a@host", "", "one"},
		{"no target", two, "", "one", "target parameter is missing"},
		{"target without host", two, "nohost", "one", "no @host part"},
		{"unknown module", two, "a@host", "three", `unknown auth_module "three"`},
		{"no module among two", two, "a@host", "", "auth_module parameter is missing"},
	} {
		got, err := tc.f.Resolve(tc.target, tc.module)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
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
