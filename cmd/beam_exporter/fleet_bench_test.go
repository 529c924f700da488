//go:build fleetbench

// The fleet benchmark (make bench-fleet): 50 real nodes, one exporter in
// fleet mode, and Debian's Prometheus scraping every node through /probe
// every 5 s. It reports every scrape's latency distribution, the failed
// scrapes, and the exporter's CPU and resident memory.

package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

func init() { buildFlags = nil }

func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestFleetBench(t *testing.T) {
	nodeCount := benchEnv("FLEET_NODES", 50)
	duration := time.Duration(benchEnv("FLEET_SECONDS", 600)) * time.Second
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is missing: apt-get install prometheus")
	}
	dir := t.TempDir()
	const cookie = "fleet-bench-cookie"

	fmt.Printf("starting %d nodes\n", nodeCount)
	var targets []string
	for i := range nodeCount {
		n := erltest.Start(t, erltest.Options{Name: erltest.UniqueName("bench"), Cookie: cookie})
		targets = append(targets, n.Name)
		if (i+1)%10 == 0 {
			fmt.Printf("  %d nodes up\n", i+1)
		}
	}
	cookieFile := filepath.Join(dir, "bench.cookie")
	config := filepath.Join(dir, "beam_exporter.yml")
	os.WriteFile(cookieFile, []byte(cookie+"\n"), 0o600)
	host := strings.SplitN(targets[0], "@", 2)[1]
	os.WriteFile(config, []byte("auth_modules:\n  bench: {cookie_file: "+cookieFile+", targets: ['bench_*@"+host+"']}\n"), 0o600)
	addr, cmd, logs := startExporter(t, "unused", "--config.file="+config)

	quoted := make([]string, len(targets))
	for i, target := range targets {
		quoted[i] = strconv.Quote(target)
	}
	promConfig := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(promConfig, []byte(fmt.Sprintf(`global:
  scrape_interval: 5s
  scrape_timeout: 5s
scrape_configs:
  - job_name: beam
    metrics_path: /probe
    params:
      auth_module: [bench]
    static_configs:
      - targets: [%s]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: %[2]s
  - job_name: beam_exporter
    static_configs:
      - targets: [%[2]q]
`, strings.Join(quoted, ", "), addr)), 0o644)
	promAddr := testkit.FreeAddr(t)
	prom := exec.Command(prometheus, "--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prom.Process.Kill(); prom.Wait() })
	promURL := "http://" + promAddr

	fmt.Printf("scraping %d nodes every 5 s for %s\n", nodeCount, duration)
	start := time.Now()
	for time.Since(start) < duration {
		time.Sleep(30 * time.Second)
		fmt.Printf("  %s elapsed; beam_up==1 for %s nodes\n", time.Since(start).Round(time.Second), promScalar(t, promURL, `count(beam_up{job="beam"} == 1)`))
	}
	window := fmt.Sprintf("%ds", int(duration.Seconds()))
	report := []struct{ what, expr string }{
		{"scrapes", `sum(count_over_time(scrape_duration_seconds{job="beam"}[` + window + `]))`},
		{"failed scrapes (up == 0)", `sum(count_over_time((up{job="beam"} == 0)[` + window + `:5s]))`},
		{"scrapes with beam_up 0", `sum(count_over_time((beam_up{job="beam"} == 0)[` + window + `:5s]))`},
		{"scrapes with a failed collector", `sum(count_over_time((min by (instance) (beam_scrape_collector_success{job="beam"}) == 0)[` + window + `:5s]))`},
		{"scrape latency p50 (s)", `quantile(0.5, quantile_over_time(0.5, scrape_duration_seconds{job="beam"}[` + window + `]))`},
		{"scrape latency p90 of the per-node p90s (s)", `quantile(0.9, quantile_over_time(0.9, scrape_duration_seconds{job="beam"}[` + window + `]))`},
		{"scrape latency p99 of the per-node p99s (s)", `quantile(0.99, quantile_over_time(0.99, scrape_duration_seconds{job="beam"}[` + window + `]))`},
		{"scrape latency max (s)", `max(max_over_time(scrape_duration_seconds{job="beam"}[` + window + `]))`},
		{"exporter CPU (cores, mean)", `rate(process_cpu_seconds_total{job="beam_exporter"}[` + window + `])`},
		{"exporter RSS max (MB)", `max_over_time(process_resident_memory_bytes{job="beam_exporter"}[` + window + `]) / 1e6`},
		{"exporter goroutines max", `max_over_time(go_goroutines{job="beam_exporter"}[` + window + `])`},
	}
	fmt.Printf("\nfleet benchmark: %d nodes, one exporter (pid %d), Prometheus every 5 s for %s\n", nodeCount, cmd.Process.Pid, duration)
	for _, r := range report {
		fmt.Printf("  %-48s %s\n", r.what, promScalar(t, promURL, r.expr))
	}
	if t.Failed() {
		t.Logf("exporter log:\n%s", logs)
	}
}

// promScalar evaluates expr and returns its single value, or what went wrong.
func promScalar(t *testing.T, promURL, expr string) string {
	var result struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(promURL+"/api/v1/query?query="+url.QueryEscape(expr), &result); err != nil {
		return "error: " + err.Error()
	}
	switch {
	case result.Status != "success":
		return "error: " + result.Error
	case len(result.Data.Result) == 0:
		return "0 (no series)"
	case len(result.Data.Result[0].Value) != 2:
		return "malformed answer"
	}
	return fmt.Sprint(result.Data.Result[0].Value[1])
}
