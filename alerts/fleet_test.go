// Fleet test: 100 instances with 10 saturated make one notification group in the example Alertmanager config.
package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const fleetSize, fleetSaturated = 100, 10

// fleetAlerts runs the shipped rules with promtool on a fleet of 100 nodes of
// one application, 10 of them saturated, and returns the label sets of the
// alerts that fire: promtool fails unless exactly those 10 fire.
func fleetAlerts(t *testing.T, app string) []map[string]string {
	t.Helper()
	promtool := tool(t, "promtool", "prometheus")
	th, err := DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	var input []any
	var want []map[string]string
	for i := 0; i < fleetSize; i++ {
		inst := fmt.Sprintf("%s-%03d:9882", app, i)
		util := "0.3x40"
		if i%(fleetSize/fleetSaturated) == 0 {
			util = "0.97x40"
			want = append(want, map[string]string{
				"alertname": "BEAMSchedulerSaturation", "severity": "warning",
				"job": "beam", th.AppLabel: app, "instance": inst, "type": "normal",
			})
		}
		input = append(input,
			map[string]any{"series": fmt.Sprintf(`beam_scheduler_utilization_ratio{job="beam",%s=%q,instance=%q,type="normal"}`, th.AppLabel, app, inst), "values": util},
			map[string]any{"series": fmt.Sprintf(`beam_up{job="beam",%s=%q,instance=%q}`, th.AppLabel, app, inst), "values": "1x40"})
	}
	var samples []any
	for _, l := range want {
		var parts []string
		for _, k := range sortedKeys(l) {
			parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
		}
		samples = append(samples, map[string]any{"labels": "ALERTS{alertstate=\"firing\"," + strings.Join(parts, ",") + "}", "value": 1})
	}
	abs, err := filepath.Abs(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{
		"rule_files":          []string{abs},
		"evaluation_interval": "1m",
		"tests": []any{map[string]any{
			"interval":     "1m",
			"input_series": input,
			"promql_expr_test": []any{map[string]any{
				"expr":        `ALERTS{alertstate="firing"}`,
				"eval_time":   "30m",
				"exp_samples": samples,
			}},
		}},
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fleet_test.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := run(t, promtool, "test", "rules", path); strings.Contains(res, "FAILED") {
		t.Fatalf("promtool test rules: %s", res)
	}
	return want
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// alertmanager starts Debian's Alertmanager on the example configuration,
// exactly as shipped, and returns its base URL.
func alertmanager(t *testing.T) string {
	t.Helper()
	bin := tool(t, "prometheus-alertmanager", "prometheus-alertmanager")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg, err := filepath.Abs(AlertmanagerExampleFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+t.TempDir(),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(end) {
			t.Fatal("alertmanager not ready after 30s")
		}
	}
}

type amGroup struct {
	Labels   map[string]string `json:"labels"`
	Receiver struct {
		Name string `json:"name"`
	} `json:"receiver"`
	Alerts []struct {
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

func postAlerts(t *testing.T, base string, labels []map[string]string) {
	t.Helper()
	var alerts []any
	for _, l := range labels {
		alerts = append(alerts, map[string]any{
			"labels":      l,
			"annotations": map[string]string{"summary": "fleet test"},
			"startsAt":    time.Now().UTC().Format(time.RFC3339),
		})
	}
	body, _ := json.Marshal(alerts)
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("posting alerts: HTTP %d: %s", resp.StatusCode, b)
	}
}

// groups waits until Alertmanager holds want alerts and returns its groups.
func groups(t *testing.T, base string, want int) []amGroup {
	t.Helper()
	var gs []amGroup
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(base + "/api/v2/alerts/groups")
		if err != nil {
			t.Fatal(err)
		}
		gs = nil
		err = json.NewDecoder(resp.Body).Decode(&gs)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, g := range gs {
			n += len(g.Alerts)
		}
		if n == want {
			return gs
		}
		if time.Now().After(end) {
			t.Fatalf("alertmanager holds %d alerts, want %d", n, want)
		}
	}
}

// TestFleetGrouping: a 100-instance fleet with 10 saturated instances fires
// 10 alerts (promtool, shipped rules), and the example Alertmanager
// configuration (a real Alertmanager) puts them into one notification group;
// a second application makes a second group, never one per instance.
func TestFleetGrouping(t *testing.T) {
	amtool := tool(t, "amtool", "prometheus-alertmanager")
	th, err := DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	payments := fleetAlerts(t, "payments")
	if len(payments) != fleetSaturated {
		t.Fatalf("%d saturated instances, want %d", len(payments), fleetSaturated)
	}
	for _, l := range payments[:1] {
		args := []string{"config", "routes", "test", "--config.file=" + AlertmanagerExampleFile, "--verify.receivers=beam-warning"}
		for _, k := range sortedKeys(l) {
			args = append(args, k+"="+l[k])
		}
		run(t, amtool, args...)
	}

	base := alertmanager(t)
	postAlerts(t, base, payments)
	gs := groups(t, base, fleetSaturated)
	if len(gs) != 1 {
		t.Fatalf("%d saturated instances make %d notification groups, want 1: %+v", fleetSaturated, len(gs), gs)
	}
	g := gs[0]
	wantLabels := map[string]string{"alertname": "BEAMSchedulerSaturation", "job": "beam", th.AppLabel: "payments"}
	if fmt.Sprint(g.Labels) != fmt.Sprint(wantLabels) || g.Receiver.Name != "beam-warning" || len(g.Alerts) != fleetSaturated {
		t.Errorf("group %v to %s with %d alerts, want %v to beam-warning with %d", g.Labels, g.Receiver.Name, len(g.Alerts), wantLabels, fleetSaturated)
	}

	postAlerts(t, base, fleetAlerts(t, "search"))
	gs = groups(t, base, 2*fleetSaturated)
	var keys []string
	for _, g := range gs {
		keys = append(keys, fmt.Sprintf("%s/%d", g.Labels[th.AppLabel], len(g.Alerts)))
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "payments/10,search/10" {
		t.Errorf("two applications make groups %v, want payments/10 and search/10", keys)
	}
}
