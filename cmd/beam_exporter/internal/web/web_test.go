package web

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/config"
	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/fleet"
	"github.com/beam-exporter/beam_exporter/collector"
)

func TestMain(m *testing.M) {
	// The collectors' flags, which the pool reads, take their defaults.
	if _, err := kingpin.CommandLine.Parse(nil); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// serve answers one GET of path from h.
func serve(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// A fleet without a sidecar node: the endpoints it calls for, and a landing
// page that links them. Nothing here connects to a node.
func TestNewHandlerFleet(t *testing.T) {
	pool, err := fleet.New(fleet.Options{
		Modules: map[string]config.AuthModule{"prod": {Name: "prod", Cookie: "c"}},
		Tiers:   collector.Tiers{Fast: time.Second, Slow: time.Second}, MaxTargets: 1, IdleTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	own := prometheus.NewRegistry()
	own.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "beam_exporter_test_own", Help: "A metric of the exporter's own."}))
	h, err := NewHandler(Config{MetricsPath: "/metrics", Own: own, Fleet: pool, EPMDHosts: []string{"127.0.0.1"}, EPMDPort: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rec := serve(h, "/metrics"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "beam_exporter_test_own 0") ||
		strings.Contains(rec.Body.String(), "beam_up") {
		t.Errorf("/metrics of a fleet: %d\n%s", rec.Code, rec.Body)
	}
	page := serve(h, "/").Body.String()
	for _, link := range []string{`href="/metrics"`, `href="/probe"`, `href="/top"`, `href="/targets"`} {
		if !strings.Contains(page, link) {
			t.Errorf("the landing page does not link %s:\n%s", link, page)
		}
	}
	for path, status := range map[string]int{
		"/probe":                          http.StatusBadRequest, // no target
		"/probe?target=a@b&auth_module=x": http.StatusBadRequest,
		"/top?auth_module=prod":           http.StatusBadRequest,
		"/targets":                        http.StatusOK, // no EPMD on port 1: no groups
	} {
		if rec := serve(h, path); rec.Code != status {
			t.Errorf("%s: %d %q, want %d", path, rec.Code, rec.Body, status)
		}
	}
	if body := serve(h, "/targets").Body.String(); strings.TrimSpace(body) != "[]" {
		t.Errorf("/targets without an EPMD: %q, want []", body)
	}

	if _, err := NewHandler(Config{MetricsPath: "/metrics", Own: own}); err == nil {
		t.Error("a handler with neither a node nor a fleet")
	}
	h, err = NewHandler(Config{MetricsPath: "/", Own: own, Fleet: pool})
	if err != nil {
		t.Fatal(err)
	}
	if body := serve(h, "/").Body.String(); !strings.Contains(body, "beam_exporter_test_own") {
		t.Errorf("with --web.telemetry-path=/ the metrics are on /, not a landing page:\n%.300s", body)
	}
}

func TestScrapeTimeout(t *testing.T) {
	timeouts := Timeouts{Offset: 500 * time.Millisecond, Default: 10 * time.Second}
	for header, want := range map[string]time.Duration{
		"":      10 * time.Second,
		"abc":   10 * time.Second,
		"-1":    10 * time.Second,
		"0":     10 * time.Second,
		"15":    14500 * time.Millisecond,
		"2.5":   2 * time.Second,
		"0.4":   200 * time.Millisecond, // the offset would leave nothing: half the timeout
		"0.500": 250 * time.Millisecond,
	} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if header != "" {
			r.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", header)
		}
		if got := scrapeTimeout(r, timeouts); got != want {
			t.Errorf("header %q: %s, want %s", header, got, want)
		}
	}
}
