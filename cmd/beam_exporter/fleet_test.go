// Fleet mode end to end: a real Prometheus discovers nodes through /targets
// and scrapes each through /probe.

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

func TestEndToEndFleetDiscovery(t *testing.T) {
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is missing: apt-get install prometheus")
	}
	dir := t.TempDir()
	const cookie = "fleet-e2e-cookie"
	nodes := []*erltest.Node{
		erltest.Start(t, erltest.Options{Name: erltest.UniqueName("fleet_e2e"), Cookie: cookie}),
		erltest.Start(t, erltest.Options{Name: erltest.UniqueName("fleet_e2e"), Cookie: cookie}),
	}
	host := strings.SplitN(nodes[0].Name, "@", 2)[1]
	cookieFile := filepath.Join(dir, "prod.cookie")
	config := filepath.Join(dir, "beam_exporter.yml")
	for file, text := range map[string]string{
		cookieFile: cookie + "\n",
		config:     "auth_modules:\n  prod: {cookie_file: " + cookieFile + ", targets: ['fleet_e2e_*@" + host + "']}\n",
	} {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	localName := erltest.UniqueName("fleet_exporter") + "@" + host
	addr, _, logs := startExporter(t, "unused", "--config.file="+config, "--discovery.epmd-host="+host, "--erlang.local-name="+localName)

	promConfig := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promConfig, []byte(fmt.Sprintf(`scrape_configs:
  - job_name: beam
    scrape_interval: 2s
    scrape_timeout: 2s
    metrics_path: /probe
    params:
      auth_module: [prod]
    http_sd_configs:
      - url: http://%[1]s/targets
        refresh_interval: 1s
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: %[1]s
`, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := testkit.FreeAddr(t)
	prom := exec.Command(prometheus, "--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	var promLogs testkit.LockedBuffer
	prom.Stdout, prom.Stderr = &promLogs, &promLogs
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prom.Process.Kill(); prom.Wait() })

	// Every node of ours is an active target, healthy, and reports beam_up 1.
	deadline := time.Now().Add(60 * time.Second)
	for {
		up, status := fleetUp(t, "http://"+promAddr, nodes)
		if up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus does not scrape every node through /probe: %s\nexporter:\n%s\nprometheus:\n%s", status, logs, promLogs.String())
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The pool connects under --erlang.local-name, as the sidecar does.
	if got := nodes[0].Eval(t, "nodes(hidden)."); got != "["+localName+"]" {
		t.Errorf("%s sees the exporter as %s, want %s", nodes[0].Name, got, localName)
	}

	// The drill-down of a node Prometheus found, through the same pool.
	status, body := testkit.Get(t, "http://"+addr+"/top?auth_module=prod&target="+url.QueryEscape(nodes[0].Name), "Accept", "application/json")
	var top struct {
		Node   string
		Memory []struct{ Pid, Name string }
	}
	if err := json.Unmarshal([]byte(body), &top); status != http.StatusOK || err != nil || top.Node != nodes[0].Name || len(top.Memory) == 0 {
		t.Errorf("/top of %s: %d %v\n%.500s", nodes[0].Name, status, err, body)
	}
}

// fleetUp reports whether Prometheus has each node as a healthy target with
// beam_up 1, and otherwise what it has.
func fleetUp(t *testing.T, prom string, nodes []*erltest.Node) (bool, string) {
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Labels map[string]string `json:"labels"`
				Health string            `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := getJSON(prom+"/api/v1/targets", &targets); err != nil {
		return false, err.Error()
	}
	health := map[string]string{}
	for _, at := range targets.Data.ActiveTargets {
		health[at.Labels["instance"]] = at.Health
	}
	var result struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(prom+"/api/v1/query?query="+url.QueryEscape(`beam_up == 1`), &result); err != nil {
		return false, err.Error()
	}
	up := map[string]bool{}
	for _, r := range result.Data.Result {
		up[r.Metric["instance"]] = true
	}
	for _, n := range nodes {
		if health[n.Name] != "up" || !up[n.Name] {
			return false, fmt.Sprintf("%s: health %q, beam_up 1: %v", n.Name, health[n.Name], up[n.Name])
		}
	}
	return true, ""
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}
