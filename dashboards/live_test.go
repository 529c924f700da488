// Live end to end (issue 3, Proof): real BEAM node, exporter and Prometheus; rules healthy, panels return data, metric names exist.
package dashboards_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/alerts"
	"github.com/beam-exporter/beam_exporter/dashboards"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

const prometheusBin = "/usr/bin/prometheus"

// startProc starts a long-running helper and kills it (by its own pid) at cleanup.
func startProc(t *testing.T, cmd *exec.Cmd) *bytes.Buffer {
	t.Helper()
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output (tail):\n%s", filepath.Base(cmd.Path), tail(out.String(), 3000))
		}
	})
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func httpGet(u string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: HTTP %d: %s", u, resp.StatusCode, b)
	}
	return string(b), err
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	var last string
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		ok, info := cond()
		if ok {
			return
		}
		last = info
	}
	t.Fatalf("timed out after %v waiting for %s; last: %s", d, what, last)
}

type promResult struct {
	Status    string `json:"status"`
	Error     string `json:"error"`
	ErrorType string `json:"errorType"`
	Data      struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

func query(promURL, expr string) (promResult, error) {
	return queryAt(promURL, expr, "")
}

// queryAt evaluates expr at the given Unix time ("" for now).
func queryAt(promURL, expr, at string) (promResult, error) {
	var r promResult
	u := promURL + "/api/v1/query?query=" + url.QueryEscape(expr)
	if at != "" {
		u += "&time=" + at
	}
	body, err := httpGet(u)
	if jerr := json.Unmarshal([]byte(body), &r); jerr != nil {
		if err == nil {
			err = jerr
		}
		return r, err
	}
	if r.Status != "success" {
		return r, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	return r, nil
}

func TestEndToEndDashboards(t *testing.T) {
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Fatalf("%s is missing: install Debian's Prometheus with `sudo apt-get install -y prometheus`", prometheusBin)
	}
	tmp := t.TempDir()

	// 1. The exporter binary exactly as shipped.
	bin := filepath.Join(tmp, "beam_exporter")
	build := exec.Command("go", "build", "-o", bin, "./cmd/beam_exporter")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// 2. A real node with a registered process holding a queued mailbox and a
	// named ETS table, and one that keeps doing a little work, so that the
	// top-N series (mailbox, memory, reductions, ETS) exist.
	node := erltest.Start(t, erltest.Options{OTP: "25", Name: erltest.UniqueName("live")})
	node.Eval(t, `P = spawn(fun() ->
		T = ets:new(live_table, [named_table, public, set]),
		ets:insert(T, [{K, lists:duplicate(20, K)} || K <- lists:seq(1, 2000)]),
		receive stop -> ok end
	end),
	register(live_sink, P),
	[P ! {msg, N} || N <- lists:seq(1, 500)],
	W = spawn(fun() -> Work = fun F() -> lists:sum(lists:seq(1, 1000)), timer:sleep(5), F() end, Work() end),
	register(live_worker, W),
	ok`)
	// A peer in the node's cluster, so that the Distribution dashboard has a
	// link to show; a little traffic keeps its rates above 0.
	peer := erltest.Start(t, erltest.Options{OTP: "25", Name: erltest.UniqueName("livepeer"), Cookie: node.Cookie})
	peer.Eval(t, `register(live_sink, spawn(fun F() -> receive _ -> F() end end)), ok.`)
	node.Eval(t, fmt.Sprintf(`true = net_kernel:connect_node('%[1]s'),
	spawn(fun F() -> {live_sink, '%[1]s'} ! lists:seq(1, 100), timer:sleep(50), F() end), ok.`, peer.Name))

	// 3. The exporter against the node, with 1 s tiers so every scrape is fresh.
	// A 2 s scrape_timeout minus a 200ms offset leaves 1.8 s for the
	// processes scan and its 250ms reductions window (both documented
	// flags), which a loaded 2-core machine needs.
	host := node.Name[strings.Index(node.Name, "@")+1:]
	exporterAddr := testkit.FreeAddr(t)
	exp := exec.Command(bin,
		"--erlang.node="+node.Name,
		"--web.listen-address="+exporterAddr,
		"--collector.tier.fast=1s", "--collector.tier.slow=1s",
		"--web.scrape-timeout-offset=200ms", "--collector.processes.window=250ms",
		"--collector.msacc",          // opt-in, and the GC panel and alert use it
		"--collector.sysmon",         // opt-in, and the system monitor panels use it
		"--collector.process_groups", // opt-in, and the processes dashboard shows it
		"--erlang.local-name="+erltest.UniqueName("beam_exporter")+"@"+host)
	exp.Env = append(os.Environ(), "BEAM_EXPORTER_ERLANG_COOKIE="+node.Cookie)
	startProc(t, exp)
	metricsURL := "http://" + exporterAddr + "/metrics"
	waitFor(t, "exporter reporting beam_up 1", 60*time.Second, func() (bool, string) {
		body, err := httpGet(metricsURL)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(body, "\nbeam_up 1"), tail(body, 500)
	})

	// 4. Prometheus scraping every second, with the shipped rules generated
	// with a short `for` and recording interval (the thresholds are the
	// shipped ones).
	th, err := alerts.DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := alerts.Generate(th, alerts.Options{For: "5s", RecordInterval: "4s"})
	if err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(tmp, "beam_exporter.rules.yml")
	if err := os.WriteFile(rulesFile, rules, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: beam
    static_configs:
      - targets: [%q]
        labels: {%s: live}
`, rulesFile, exporterAddr, th.AppLabel)
	cfgFile := filepath.Join(tmp, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := testkit.FreeAddr(t)
	startProc(t, exec.Command(prometheusBin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(tmp, "tsdb"),
		"--web.listen-address="+promAddr))
	promURL := "http://" + promAddr

	// 5. Enough scrapes that rate() over $__rate_interval has several samples
	// and every rule has been evaluated at least once.
	waitFor(t, "10 scrapes with beam_up 1", 90*time.Second, func() (bool, string) {
		r, err := query(promURL, `count_over_time(beam_up{job="beam"}[1m]) >= 10 and beam_up == 1`)
		if err != nil {
			return false, err.Error()
		}
		return len(r.Data.Result) > 0, fmt.Sprint(r.Data.Result)
	})
	type ruleState struct {
		Name, Health, LastError string
		Query                   string `json:"query"`
	}
	var ruleStates []ruleState
	waitFor(t, "every rule evaluated", 30*time.Second, func() (bool, string) {
		body, err := httpGet(promURL + "/api/v1/rules")
		if err != nil {
			return false, err.Error()
		}
		var r struct {
			Data struct {
				Groups []struct{ Rules []ruleState }
			}
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return false, err.Error()
		}
		ruleStates = nil
		for _, g := range r.Data.Groups {
			ruleStates = append(ruleStates, g.Rules...)
		}
		for _, s := range ruleStates {
			if s.Health == "unknown" || s.Health == "" {
				return false, s.Name + " not evaluated yet"
			}
		}
		return len(ruleStates) > 0, "no rules loaded"
	})

	// a. Every rule healthy.
	wantAlerts, _ := alerts.Rules()
	wantRecords, _ := alerts.Records()
	if len(ruleStates) != len(wantAlerts)+len(wantRecords) {
		t.Errorf("Prometheus loaded %d rules, the shipped file has %d alerting and %d recording rules",
			len(ruleStates), len(wantAlerts), len(wantRecords))
	}
	for _, s := range ruleStates {
		if s.Health != "ok" {
			t.Errorf("rule %s: health %q, lastError %q\n  expr: %s", s.Name, s.Health, s.LastError, s.Query)
		}
	}

	// b. Every panel expression runs and (unless Conditional) returns data.
	// On a loaded machine a scrape's processes refresh can miss its
	// deadline, and the ranking series then go stale until the next one;
	// so every panel is evaluated just after a scrape in which every
	// collector succeeded.
	var at string
	waitFor(t, "a scrape in which every collector succeeded", 60*time.Second, func() (bool, string) {
		r, err := query(promURL, `timestamp(beam_up{job="beam"}) and on() (min(beam_scrape_collector_success{job="beam"}) == 1)`)
		if err != nil || len(r.Data.Result) == 0 {
			return false, fmt.Sprint(err)
		}
		var sample struct{ Value [2]json.RawMessage }
		if err := json.Unmarshal(r.Data.Result[0], &sample); err != nil {
			return false, err.Error()
		}
		var scraped string // the scrape's own time, as the sample's value
		if err := json.Unmarshal(sample.Value[1], &scraped); err != nil {
			return false, err.Error()
		}
		seconds, err := strconv.ParseFloat(scraped, 64)
		if err != nil {
			return false, err.Error()
		}
		at = strconv.FormatFloat(seconds+0.001, 'f', 3, 64)
		// And the recording rules have a ranking in the panels' window: a
		// rule evaluation after scrapes that all missed the deadline
		// records nothing.
		r, err = queryAt(promURL, `max_over_time(instance:beam_process_memory_bytes:peak{job="beam"}[8s])`, at)
		if err != nil || len(r.Data.Result) == 0 {
			return false, fmt.Sprintf("no recorded ranking in the 8s before %s (%v)", at, err)
		}
		return true, ""
	})
	all, err := dashboards.All()
	if err != nil {
		t.Fatal(err)
	}
	// The recording rules run every 4 s here (RecordInterval above), so an
	// 8s $__interval and a 40s $__range hold recorded samples.
	// The target carries the application label, and the panels select it.
	vars := map[string]string{th.AppLabel: "live", "job": "beam", "instance": ".+",
		"__rate_interval": "15s", "__interval": "8s", "__range": "40s"}
	used := map[string][]string{}      // metric name -> where it is used
	unconditional := map[string]bool{} // used by a rule or a non-Conditional panel
	for _, d := range all {
		for _, p := range d.Panels {
			for _, raw := range p.Exprs {
				where := fmt.Sprintf("%s panel %d %q", d.File, p.ID, p.Title)
				expr := dashboards.Interpolate(raw, vars)
				names, err := dashboards.MetricNames(raw)
				if err != nil {
					t.Errorf("%s: scanning %q: %v", where, raw, err)
				}
				for _, n := range names {
					used[n] = append(used[n], where)
					unconditional[n] = unconditional[n] || !p.Conditional
				}
				r, err := queryAt(promURL, expr, at)
				switch {
				case err != nil:
					t.Errorf("%s: query failed: %v\n  expr: %s", where, err, expr)
				case len(r.Data.Result) == 0 && !p.Conditional:
					t.Errorf("%s: no data\n  expr: %s", where, expr)
				}
			}
		}
	}
	ruleList, err := alerts.Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ruleList {
		names, err := dashboards.MetricNames(r.Expr)
		if err != nil {
			t.Errorf("rule %s: scanning %q: %v", r.Alert, r.Expr, err)
		}
		for _, n := range names {
			used[n] = append(used[n], "rule "+r.Alert)
			unconditional[n] = true
		}
	}

	// c. Every metric name used is emitted by this exporter, or is one that
	// Prometheus itself synthesises for the scrape or the rules. A scrape
	// that joins a refresh Prometheus started shares its 1.8 s deadline, and
	// on a loaded machine the processes scan can miss it; so the check runs
	// on the first of up to 20 scrapes that leaves nothing missing.
	// Names only Conditional panels use (lock counters) have no samples on a
	// standard emulator build, so for them the check is that a collector
	// declares the name (as namespace+"_suffix").
	var src strings.Builder
	goFiles, _ := filepath.Glob("../collector/*.go")
	for _, f := range goFiles {
		if b, err := os.ReadFile(f); err == nil && !strings.HasSuffix(f, "_test.go") {
			src.Write(b)
		}
	}
	var missing []string
	for attempt := 0; attempt < 20; attempt++ {
		if attempt > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		body, err := httpGet(metricsURL)
		if err != nil {
			t.Fatal(err)
		}
		emitted := map[string]bool{}
		for _, s := range []string{"up", "scrape_duration_seconds", "scrape_samples_scraped",
			"scrape_samples_post_metric_relabeling", "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE"} {
			emitted[s] = true
		}
		for _, r := range wantRecords {
			emitted[r.Record] = true // Prometheus records them from emitted names
		}
		for _, line := range strings.Split(body, "\n") {
			if line == "" || line[0] == '#' {
				continue
			}
			emitted[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
		}
		missing = missing[:0]
		for n, where := range used {
			declared := strings.Contains(src.String(), `"`+strings.TrimPrefix(n, "beam")+`"`)
			if !emitted[n] && (unconditional[n] || !declared) {
				missing = append(missing, fmt.Sprintf("%s (used by %s)", n, strings.Join(where, "; ")))
			}
		}
		if len(missing) == 0 {
			break
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("metric not emitted by the exporter: %s", m)
	}
	t.Logf("%d rules, %d dashboards, %d distinct metric names checked", len(ruleStates), len(all), len(used))
}
