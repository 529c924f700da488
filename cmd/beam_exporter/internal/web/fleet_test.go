// Fleet mode against real nodes: /probe and /top with two auth modules, a
// frozen and a dead target beside healthy ones, idle disconnects, and /targets.

package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/config"
	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/fleet"
	"github.com/beam-exporter/beam_exporter/collector"
	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

// probe GETs /probe and returns the status and body.
func probe(t *testing.T, base, target, module string, timeout time.Duration) (int, string) {
	t.Helper()
	q := url.Values{}
	if target != "" {
		q.Set("target", target)
	}
	if module != "" {
		q.Set("auth_module", module)
	}
	return testkit.Get(t, base+"/probe?"+q.Encode(),
		"X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
}

func TestFleet(t *testing.T) {
	t.Parallel()
	one := erltest.Start(t, erltest.Options{Name: erltest.UniqueName("fleet_one"), Cookie: "fleet-cookie-one"})
	frozen := erltest.Start(t, erltest.Options{Name: erltest.UniqueName("fleet_frozen"), Cookie: "fleet-cookie-one"})
	two := erltest.Start(t, erltest.Options{Name: erltest.UniqueName("fleet_two"), Cookie: "fleet-cookie-two"})
	host := strings.SplitN(one.Name, "@", 2)[1]

	pool, err := fleet.New(fleet.Options{
		Modules: map[string]config.AuthModule{
			"one": {Name: "one", Cookie: "fleet-cookie-one", Targets: targets(t, "fleet_*@"+host)},
			"two": {Name: "two", Cookie: "fleet-cookie-two", Collectors: []string{"memory", "processes"}, Targets: targets(t, "fleet_two_*@"+host)},
		},
		Tiers:      collector.Tiers{Fast: time.Millisecond, Slow: time.Millisecond},
		MaxTargets: 3, IdleTimeout: time.Hour, LoadProbe: true, Logger: log.NewNopLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { pool.Run(ctx); close(runDone) }()
	t.Cleanup(func() { cancel(); <-runDone })
	mux := http.NewServeMux()
	// frozenProbes hears of each /probe of the frozen node as it begins.
	frozenProbes := make(chan struct{}, 16)
	probes := probeHandler(pool, Timeouts{Offset: 100 * time.Millisecond, Default: 10 * time.Second}, log.NewNopLogger())
	mux.Handle("/probe", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("target") == frozen.Name {
			select {
			case frozenProbes <- struct{}{}:
			default:
			}
		}
		probes.ServeHTTP(w, r)
	}))
	mux.Handle("/top", fleetTopHandler(pool, nil, "", 10*time.Second, log.NewNopLogger()))
	mux.Handle("/targets", targetsHandler([]string{host}, erlnode.DefaultEPMDPort, log.NewNopLogger()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct{ name, target, module, want string }{
			{"no target", "", "one", "target parameter is missing"},
			{"target without host", "nohost", "one", "no @host part"},
			{"target with a bad character", "a b@host", "one", "not allowed"},
			{"unknown auth module", one.Name, "three", `unknown auth_module "three"`},
			{"no auth module among two", one.Name, "", "auth_module parameter is missing"},
		} {
			if status, body := probe(t, srv.URL, tc.target, tc.module, 5*time.Second); status != http.StatusBadRequest || !strings.Contains(body, tc.want) {
				t.Errorf("%s: %d %q, want 400 saying %q", tc.name, status, body, tc.want)
			}
		}
	})

	t.Run("targets a module does not name", func(t *testing.T) {
		before := pool.Targets()
		for _, tc := range []struct{ path, target, module string }{
			{"/probe", one.Name, "two"},
			{"/probe", "intruder@" + host, "one"},
			{"/top", one.Name, "two"},
		} {
			q := url.Values{"target": {tc.target}, "auth_module": {tc.module}}
			status, body := testkit.Get(t, srv.URL+tc.path+"?"+q.Encode())
			if status != http.StatusForbidden || !strings.Contains(body, "is not among the targets of auth module") {
				t.Errorf("%s of %s with %s: %d %q, want 403", tc.path, tc.target, tc.module, status, body)
			}
		}
		if after := pool.Targets(); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Errorf("refused targets were pooled: %v, before %v", after, before)
		}
		if n := refusals(t, pool, "not_allowed"); n != 3 {
			t.Errorf("refused as not_allowed: %v, want 3", n)
		}
	})

	t.Run("each node with its module", func(t *testing.T) {
		for _, tc := range []struct {
			node   *erltest.Node
			module string
			up     string
		}{
			{one, "one", "beam_up 1"},
			{frozen, "one", "beam_up 1"},
			{two, "one", "beam_up 0"}, // the wrong cookie
			{two, "two", "beam_up 1"}, // reconnected with the right one
		} {
			status, body := probe(t, srv.URL, tc.node.Name, tc.module, 10*time.Second)
			if status != http.StatusOK || !strings.Contains(body, "\n"+tc.up+"\n") {
				t.Errorf("%s with %s: %d, want %s:\n%.300s", tc.node.Name, tc.module, status, tc.up, body)
			}
			for _, own := range []string{"go_goroutines", "beam_exporter_build_info", "process_resident_memory_bytes"} {
				if strings.Contains(body, own) {
					t.Errorf("/probe carries the exporter's own %s", own)
				}
			}
		}
		_, body := probe(t, srv.URL, two.Name, "two", 10*time.Second)
		if !strings.Contains(body, `beam_connection_errors_total{reason="auth"} 0`) {
			t.Errorf("the pooled connection of the second module should count its own errors only:\n%.2000s", body)
		}
		// Module two runs its own set of collectors, not the flags'.
		var ran []string
		for _, line := range strings.Split(body, "\n") {
			if c, ok := strings.CutPrefix(line, `beam_scrape_collector_success{collector="`); ok {
				ran = append(ran, c[:strings.Index(c, `"`)])
			}
		}
		if strings.Join(ran, " ") != "memory processes" {
			t.Errorf("module two ran the collectors %q, want its own: memory processes", ran)
		}
	})

	t.Run("top through the pool", func(t *testing.T) {
		before := pool.Targets()
		get := func(query string) (int, string) {
			return testkit.Get(t, srv.URL+"/top?"+query, "Accept", "application/json")
		}
		status, body := get("target=" + url.QueryEscape(two.Name) + "&auth_module=two")
		var snap collector.TopSnapshot
		if err := json.Unmarshal([]byte(body), &snap); status != http.StatusOK || err != nil {
			t.Fatalf("/top of %s: %d %v\n%.300s", two.Name, status, err, body)
		}
		if snap.Node != two.Name || len(snap.Memory) == 0 || snap.Memory[0].Pid == "" {
			t.Errorf("/top of %s: %+v", two.Name, snap)
		}
		if after := pool.Targets(); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Errorf("/top pooled %v, /probe had %v: they should share connections", after, before)
		}
		for query, want := range map[string]string{
			"auth_module=two": "target parameter is missing",
			"target=" + url.QueryEscape(two.Name) + "&auth_module=three": `unknown auth_module "three"`,
		} {
			if status, body := get(query); status != http.StatusBadRequest || !strings.Contains(body, want) {
				t.Errorf("/top?%s: %d %q, want 400 saying %q", query, status, body, want)
			}
		}
	})

	t.Run("a frozen and a dead target delay nobody", func(t *testing.T) {
		frozen.Signal(t, syscall.SIGSTOP)
		for len(frozenProbes) > 0 { // the earlier subtests'
			<-frozenProbes
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			probe(t, srv.URL, frozen.Name, "one", 3*time.Second)
			if took := time.Since(start); took > 4*time.Second {
				t.Errorf("the frozen target's probe took %s with a 3 s timeout", took)
			}
		}()
		select { // the frozen probe is under way, for 3 s
		case <-frozenProbes:
		case <-time.After(10 * time.Second):
			wg.Wait()
			t.Fatal("the frozen target's probe did not begin")
		}
		for _, n := range []struct {
			node   *erltest.Node
			module string
		}{{one, "one"}, {two, "two"}} {
			start := time.Now()
			_, body := probe(t, srv.URL, n.node.Name, n.module, 10*time.Second)
			if took := time.Since(start); took > 2*time.Second || !strings.Contains(body, "\nbeam_up 1\n") {
				t.Errorf("%s beside a frozen target: %s, body:\n%.300s", n.node.Name, took, body)
			}
		}
		wg.Wait()
		frozen.Kill(t)
		start := time.Now()
		_, body := probe(t, srv.URL, one.Name, "one", 10*time.Second)
		if took := time.Since(start); took > 2*time.Second || !strings.Contains(body, "\nbeam_up 1\n") {
			t.Errorf("%s beside a dead target: %s", one.Name, took)
		}
		if _, body := probe(t, srv.URL, frozen.Name, "one", 3*time.Second); !strings.Contains(body, "\nbeam_up 0\n") {
			t.Errorf("the dead target does not show beam_up 0:\n%.300s", body)
		}
	})

	t.Run("target limit", func(t *testing.T) {
		if status, body := probe(t, srv.URL, "fleet_nobody_here@"+host, "one", 2*time.Second); status != http.StatusServiceUnavailable {
			t.Errorf("a fourth target: %d %q, want 503", status, body)
		}
	})

	t.Run("discovery", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/targets")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var groups []targetGroup
		if err := json.NewDecoder(resp.Body).Decode(&groups); err != nil {
			t.Fatal(err)
		}
		listed := map[string]map[string]string{}
		for _, g := range groups {
			listed[g.Targets[0]] = g.Labels
		}
		for _, n := range []*erltest.Node{one, two} {
			if labels, ok := listed[n.Name]; !ok || labels["node"] != n.Name || labels["host"] != host {
				t.Errorf("/targets lists %s as %v", n.Name, labels)
			}
		}
		if _, ok := listed[frozen.Name]; ok {
			t.Errorf("/targets still lists the dead %s", frozen.Name)
		}
		names, err := erltest.EPMDNames()
		if err != nil {
			t.Fatal(err)
		}
		for target := range listed {
			// Nodes of parallel tests come and go; ours must be exact.
			if alive, _, _ := strings.Cut(target, "@"); strings.HasPrefix(alive, "fleet_") {
				if _, ok := names[alive]; !ok {
					t.Errorf("/targets lists %s, which EPMD does not know", target)
				}
			}
		}
	})

	t.Run("idle targets are disconnected", func(t *testing.T) {
		cancel()
		<-runDone
		if left := pool.Targets(); len(left) != 0 {
			t.Errorf("targets still pooled after Run ended: %v", left)
		}
		idle, err := fleet.New(fleet.Options{
			Modules: map[string]config.AuthModule{"one": {Name: "one", Cookie: "fleet-cookie-one", Targets: targets(t, one.Name)}},
			Tiers:   collector.Tiers{Fast: time.Millisecond, Slow: time.Millisecond}, MaxTargets: 1, IdleTimeout: 300 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		idleCtx, stopIdle := context.WithCancel(context.Background())
		defer stopIdle()
		go idle.Run(idleCtx)
		srv := httptest.NewServer(probeHandler(idle, Timeouts{Default: 10 * time.Second}, log.NewNopLogger()))
		defer srv.Close()
		if _, body := probe(t, srv.URL, one.Name, "", 10*time.Second); !strings.Contains(body, "\nbeam_up 1\n") {
			t.Fatalf("the only module is the default:\n%.300s", body)
		}
		testkit.WaitFor(t, "the idle target to be disconnected", 3*time.Second, func() bool { return len(idle.Targets()) == 0 })
		testkit.WaitFor(t, "the node to see the exporter go", 3*time.Second, func() bool {
			return one.Eval(t, "nodes(hidden).") == "[]"
		})
	})
}

// targets parses an auth module's target patterns.
func targets(t *testing.T, patterns ...string) config.Targets {
	t.Helper()
	ts, err := config.ParseTargets(patterns...)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// refusals reads the pool's refusal counter for one reason.
func refusals(t *testing.T, pool *fleet.Fleet, reason string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(pool)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if f.GetName() == "beam_exporter_fleet_requests_refused_total" && l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no refusal counter for reason %q", reason)
	return 0
}

// A target its module does not allow is refused before any connection: the
// EPMD of its host never hears of it. The allowed control shows that the
// listener would have seen one.
func TestFleetRefusedTargetOpensNoSocket(t *testing.T) {
	t.Parallel()
	epmd := erltest.NewProxy(t, erltest.EPMDAddr)
	pool, err := fleet.New(fleet.Options{
		Modules: map[string]config.AuthModule{"prod": {Name: "prod", Cookie: "c", Targets: targets(t, "allowed@127.0.0.1")}},
		Tiers:   collector.Tiers{Fast: time.Millisecond, Slow: time.Millisecond}, MaxTargets: 5, IdleTimeout: time.Hour,
		EPMDPort: epmd.Port(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Run ends by disconnecting every target, which frees their names for
	// the next test that monitors them.
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { pool.Run(ctx); close(runDone) }()
	t.Cleanup(func() { cancel(); <-runDone })
	srv := httptest.NewServer(probeHandler(pool, Timeouts{Default: 5 * time.Second}, log.NewNopLogger()))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		target, module string
		status         int
		reason         string
	}{
		{"refused@127.0.0.1", "prod", http.StatusForbidden, "not_allowed"},
		{"allowed@127.0.0.2", "prod", http.StatusForbidden, "not_allowed"},
		{"allowed@127.0.0.1", "dev", http.StatusBadRequest, "bad_request"},
		{"allowed", "prod", http.StatusBadRequest, "bad_request"},
		{"", "prod", http.StatusBadRequest, "bad_request"},
	} {
		before := refusals(t, pool, tc.reason)
		if status, body := probe(t, srv.URL, tc.target, tc.module, 2*time.Second); status != tc.status {
			t.Errorf("%q with %q: %d %q, want %d", tc.target, tc.module, status, body, tc.status)
		}
		if after := refusals(t, pool, tc.reason); after != before+1 {
			t.Errorf("%q with %q: %s refusals went from %v to %v", tc.target, tc.module, tc.reason, before, after)
		}
	}
	if n := epmd.Accepted(); n != 0 {
		t.Fatalf("refused targets opened %d connections to EPMD", n)
	}
	// The control: an allowed target is looked up (and is unknown there).
	if status, body := probe(t, srv.URL, "allowed@127.0.0.1", "prod", 2*time.Second); status != http.StatusOK || !strings.Contains(body, "\nbeam_up 0\n") {
		t.Errorf("the allowed target: %d %.300q", status, body)
	}
	if epmd.Accepted() == 0 {
		t.Error("the allowed target did not reach EPMD either: the listener proves nothing")
	}
}
