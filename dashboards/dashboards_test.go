package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/beam-exporter/beam_exporter/alerts"
	"github.com/beam-exporter/beam_exporter/dashboards/internal/builder"
)

// knownMetrics is every metric name the dashboards and alert rules may use:
// the names fixed by the core issue. It is the one list to replace with the
// names a live exporter actually emits in an end-to-end test.
var knownMetrics = []string{
	"beam_up",
	"beam_node_info",
	"beam_start_time_seconds",
	"beam_scheduler_utilization_ratio",
	"beam_schedulers",
	"beam_run_queue_length",
	"beam_memory_bytes",
	"beam_processes",
	"beam_process_limit",
	"beam_ports",
	"beam_port_limit",
	"beam_atoms",
	"beam_atom_limit",
	"beam_ets_tables",
	"beam_ets_table_limit",
	"beam_gc_runs_total",
	"beam_gc_reclaimed_bytes_total",
	"beam_msacc_seconds_total",
	"beam_process_memory_bytes",
	"beam_process_message_queue_length",
	"beam_process_reductions_per_second",
	"beam_process_group_memory_bytes",
	"beam_process_group_processes",
	"beam_process_group_message_queue_length",
	"beam_process_group_reductions_per_second",
	"beam_ets_table_memory_bytes",
	"beam_ets_table_objects",
	"beam_reductions_total",
	"beam_context_switches_total",
	"beam_io_received_bytes_total",
	"beam_io_sent_bytes_total",
	"beam_cpu_seconds_total",
	"beam_lock_counting_available",
	"beam_lock_collisions_total",
	"beam_lock_acquisitions_total",
	"beam_scrape_collector_duration_seconds",
	"beam_scrape_collector_success",
	"beam_exporter_build_info",
	"beam_dist_link_info",
	"beam_dist_buffer_busy_limit_bytes",
	"beam_dist_sent_bytes_total",
	"beam_dist_received_bytes_total",
	"beam_dist_sent_packets_total",
	"beam_dist_received_packets_total",
	"beam_dist_send_queue_bytes",
	"beam_dist_link_connections_total",
	"beam_dist_disconnections_total",
	"beam_ports_by_driver",
	"beam_sockets",
	"beam_active_tasks",
	"beam_mnesia_held_locks",
	"beam_mnesia_lock_queue_length",
	"beam_mnesia_transactions_total",
	"beam_mnesia_transaction_restarts_total",
	"beam_mnesia_transaction_log_writes_total",
	"beam_mnesia_table_memory_bytes",
	"beam_mnesia_table_records",
	"beam_allocator_carriers_bytes",
	"beam_allocator_blocks_bytes",
	"beam_os_resident_memory_bytes",
	"beam_memory_used_bytes",
	"beam_persistent_terms",
	"beam_persistent_term_memory_bytes",
	"beam_system_monitor_events_total",
	"beam_system_monitor_events_by_source_total",
	"beam_system_monitor_long_gc_seconds_sum",
}

// knownNames is knownMetrics plus the series the shipped recording rules
// record, which panels may read too.
func knownNames(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, m := range knownMetrics {
		known[m] = true
	}
	records, err := alerts.Records()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		known[r.Record] = true
	}
	return known
}

// panelVars are the values the offline tests give Grafana's variables.
var panelVars = map[string]string{"app": ".*", "job": ".+", "instance": ".+",
	"__rate_interval": "2m", "__interval": "1m", "__range": "30m"}

// conditionalMetrics exist only on some nodes; panels reading them must be
// marked conditional.
var conditionalMetrics = map[string]bool{
	"beam_lock_collisions_total":   true,
	"beam_lock_acquisitions_total": true,
	// The opt-in mnesia collector reads only nodes that run Mnesia.
	"beam_mnesia_held_locks":                   true,
	"beam_mnesia_lock_queue_length":            true,
	"beam_mnesia_transactions_total":           true,
	"beam_mnesia_transaction_restarts_total":   true,
	"beam_mnesia_transaction_log_writes_total": true,
	"beam_mnesia_table_memory_bytes":           true,
	"beam_mnesia_table_records":                true,
	// A source of system monitor events has a series once it had an event.
	"beam_system_monitor_events_by_source_total": true,
	// Linux nodes only.
	"beam_os_resident_memory_bytes": true,
}

var wantFiles = []string{"beam-allocators.json", "beam-distribution.json", "beam-fleet.json", "beam-memory.json", "beam-mnesia.json", "beam-overview.json", "beam-processes.json"}

const thresholdsPath = "../alerts/thresholds.yml"

func tool(t *testing.T, name, debPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (needed to check the dashboard queries). Install it with:\n\tapt-get install -y %s\n(as root; use sudo otherwise)", name, debPackage)
	}
	return p
}

func TestFilesUpToDate(t *testing.T) {
	data, err := os.ReadFile(thresholdsPath)
	if err != nil {
		t.Fatal(err)
	}
	th, err := alerts.ParseThresholds(data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := builder.Render(th)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, _ := filepath.Glob("*.json")
	sort.Strings(onDisk)
	if !reflect.DeepEqual(onDisk, wantFiles) {
		t.Errorf("dashboards on disk: %v, want %v", onDisk, wantFiles)
	}
	for name, b := range want {
		got, err := os.ReadFile(name)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("dashboards/%s is out of date with its generator or alerts/thresholds.yml: run make alerts (go run ./dashboards/gen) and commit the result", name)
		}
	}
	if builder.ConditionalField != ConditionalField || builder.ThresholdsField != ThresholdsField {
		t.Error("marker field names differ between the builder and the package")
	}
}

// thresholdValue resolves a dotted path in thresholds.yml on its own, without
// the alerts package, so that a bug there cannot hide a wrong line.
func thresholdValue(t *testing.T, doc map[string]any, path string) float64 {
	t.Helper()
	var cur any = doc
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("threshold %q: %s is not a map", path, p)
		}
		if cur, ok = m[p]; !ok {
			t.Fatalf("threshold %q not in alerts/thresholds.yml", path)
		}
	}
	switch v := cur.(type) {
	case int:
		return float64(v)
	case float64:
		return v
	}
	t.Fatalf("threshold %q is not a number: %v", path, cur)
	return 0
}

// aboveKeys lists every "<alert>.<level>.above" path of thresholds.yml.
func aboveKeys(doc map[string]any) []string {
	var keys []string
	for alert, v := range doc {
		levels, ok := v.(map[string]any)
		if !ok {
			continue
		}
		for lvl, lv := range levels {
			if m, ok := lv.(map[string]any); ok {
				if _, ok := m["above"]; ok {
					keys = append(keys, alert+"."+lvl+".above")
				}
			}
		}
	}
	sort.Strings(keys)
	return keys
}

type gridRect struct{ x, y, w, h int }

func (a gridRect) overlaps(b gridRect) bool {
	return a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h
}

func get(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func str(v any) string { s, _ := v.(string); return s }

func TestDashboards(t *testing.T) {
	thData, err := os.ReadFile(thresholdsPath)
	if err != nil {
		t.Fatal(err)
	}
	var thDoc map[string]any
	if err := yaml.Unmarshal(thData, &thDoc); err != nil {
		t.Fatal(err)
	}
	known := knownNames(t)
	windows := thresholdWindows(t)
	drawn := map[string]bool{}
	uids := map[string]string{}
	files := Files()
	if len(files) != len(wantFiles) {
		t.Errorf("embedded dashboards: %d, want %d", len(files), len(wantFiles))
	}
	for _, name := range wantFiles {
		data, ok := files[name]
		if !ok {
			t.Errorf("%s: not embedded", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			if !json.Valid(data) {
				t.Fatal("invalid JSON")
			}
			var d map[string]any
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			checkDashboard(t, d, uids, name)
			checkVariables(t, d)
			panels, _ := d["panels"].([]any)
			if len(panels) == 0 {
				t.Fatal("no panels")
			}
			ids := map[float64]bool{}
			var rects []gridRect
			var titles []string
			for _, pv := range panels {
				p, _ := pv.(map[string]any)
				title := str(p["title"])
				if title == "" {
					t.Errorf("panel %v has no title", p["id"])
				}
				ctx := fmt.Sprintf("panel %q", title)
				id, _ := p["id"].(float64)
				if id == 0 || ids[id] {
					t.Errorf("%s: id %v missing or not unique", ctx, p["id"])
				}
				ids[id] = true
				gp, _ := p["gridPos"].(map[string]any)
				r := gridRect{int(num(gp["x"])), int(num(gp["y"])), int(num(gp["w"])), int(num(gp["h"]))}
				if r.w <= 0 || r.h <= 0 || r.x < 0 || r.y < 0 || r.x+r.w > 24 {
					t.Errorf("%s: bad gridPos %v", ctx, gp)
				}
				for n, o := range rects {
					if r.overlaps(o) {
						t.Errorf("%s overlaps panel %q", ctx, titles[n])
					}
				}
				rects = append(rects, r)
				titles = append(titles, title)
				checkPanel(t, ctx, p, known, windows, thDoc, drawn)
			}
		})
	}
	for _, k := range aboveKeys(thDoc) {
		if !drawn[k] {
			t.Errorf("threshold %s of alerts/thresholds.yml is not drawn on any panel", k)
		}
	}
}

func num(v any) float64 { f, _ := v.(float64); return f }

func checkDashboard(t *testing.T, d map[string]any, uids map[string]string, name string) {
	t.Helper()
	inputs, _ := d["__inputs"].([]any)
	okInput := false
	for _, iv := range inputs {
		in, _ := iv.(map[string]any)
		if str(in["type"]) == "datasource" && str(in["pluginId"]) == "prometheus" && str(in["name"]) != "" {
			okInput = true
		}
	}
	if !okInput {
		t.Error("__inputs has no Prometheus datasource input")
	}
	if v := num(d["schemaVersion"]); v < 36 || v > 41 {
		t.Errorf("schemaVersion %v, want about 39", v)
	}
	uid := str(d["uid"])
	if uid == "" || len(uid) > 40 {
		t.Errorf("uid %q: want 1 to 40 characters", uid)
	}
	if other, dup := uids[uid]; dup {
		t.Errorf("uid %q also used by %s", uid, other)
	}
	uids[uid] = name
	if str(d["title"]) == "" || str(d["description"]) == "" {
		t.Error("dashboard needs a title and a description")
	}
	if d["id"] != nil {
		t.Error("id must be null so that Grafana assigns one on import")
	}
}

// appLabel is the application label of the shipped thresholds.yml, which
// names the dashboards' application variable.
func appLabel(t *testing.T) string {
	t.Helper()
	th, err := alerts.DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	return th.AppLabel
}

func checkVariables(t *testing.T, d map[string]any) {
	t.Helper()
	list, _ := get(d, "templating", "list").([]any)
	vars := map[string]map[string]any{}
	var order []string
	for _, v := range list {
		m, _ := v.(map[string]any)
		vars[str(m["name"])] = m
		order = append(order, str(m["name"]))
	}
	app := appLabel(t)
	if got, want := strings.Join(order, ","), "datasource,"+app+",job,instance"; got != want {
		t.Errorf("variables %s, want %s", got, want)
	}
	ds := vars["datasource"]
	if ds == nil || str(ds["type"]) != "datasource" || str(ds["query"]) != "prometheus" {
		t.Errorf("want a datasource variable of type datasource for prometheus, got %v", ds)
	}
	// The application's All is .*: series without the label must match.
	allValues := map[string]string{app: ".*", "job": ".+", "instance": ".+"}
	queries := map[string]string{
		app:        `label_values(beam_up, ` + app + `)`,
		"job":      `label_values(beam_up{` + app + `=~"$` + app + `"}, job)`,
		"instance": `label_values(beam_up{` + app + `=~"$` + app + `",job=~"$job"}, instance)`,
	}
	for _, name := range []string{app, "job", "instance"} {
		v := vars[name]
		if v == nil {
			t.Errorf("no %s variable", name)
			continue
		}
		if str(v["type"]) != "query" || v["multi"] != true || v["includeAll"] != true || str(v["allValue"]) != allValues[name] {
			t.Errorf("%s: want a multi-select query variable with All = %s, got type=%v multi=%v includeAll=%v allValue=%v",
				name, allValues[name], v["type"], v["multi"], v["includeAll"], v["allValue"])
		}
		if str(get(v, "datasource", "uid")) != "${datasource}" {
			t.Errorf("%s: datasource must be ${datasource}", name)
		}
		if q := str(get(v, "query", "query")); q != queries[name] {
			t.Errorf("%s: query %q, want %q", name, q, queries[name])
		}
	}
	if desc := str(vars[app]["description"]); !strings.Contains(desc, "observability.md") {
		t.Errorf("%s variable: its description must say where the label is documented, got %q", app, desc)
	}
}

// thresholdWindows are the windows of alerts/thresholds.yml: a panel that
// shows an alert's quantity may average over the alert's own window.
func thresholdWindows(t *testing.T) map[string]bool {
	t.Helper()
	th, err := alerts.DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	w := map[string]bool{}
	for _, d := range []alerts.Duration{th.SchedulerSaturation.Window, th.RunQueue.Window, th.GCPressure.Window,
		th.MemoryGrowth.Window, th.BinaryGrowth.Window, th.ETSGrowth.Window, th.ProcessGrowth.Window,
		th.DistLinkBlocked.Window, th.DistLinkFlapping.Window} {
		w[d.Text] = true
	}
	return w
}

// optInMetrics come from collectors that are off by default: a panel reading
// one must name the flag in its description.
var optInMetrics = map[string]string{"beam_msacc_seconds_total": "--collector.msacc",
	"beam_mnesia_held_locks":                     "--collector.mnesia",
	"beam_mnesia_lock_queue_length":              "--collector.mnesia",
	"beam_mnesia_transactions_total":             "--collector.mnesia",
	"beam_mnesia_transaction_restarts_total":     "--collector.mnesia",
	"beam_mnesia_transaction_log_writes_total":   "--collector.mnesia",
	"beam_mnesia_table_memory_bytes":             "--collector.mnesia",
	"beam_mnesia_table_records":                  "--collector.mnesia",
	"beam_system_monitor_events_total":           "--collector.sysmon",
	"beam_system_monitor_events_by_source_total": "--collector.sysmon",
	"beam_system_monitor_long_gc_seconds_sum":    "--collector.sysmon",
}

// grafanaRanges are the ranges that follow the time picker and the graph's
// resolution.
var grafanaRanges = map[string]bool{"$__rate_interval": true, "$__interval": true, "$__range": true}

func checkPanel(t *testing.T, ctx string, p map[string]any, known, windows map[string]bool, thDoc map[string]any, drawn map[string]bool) {
	t.Helper()
	appFilter := fmt.Sprintf(`%[1]s=~"$%[1]s"`, appLabel(t))
	typ := str(p["type"])
	desc := str(p["description"])
	if len(desc) < 20 {
		t.Errorf("%s: needs a description of how to read it", ctx)
	}
	if str(get(p, "fieldConfig", "defaults", "unit")) == "" {
		t.Errorf("%s: no unit (fieldConfig.defaults.unit)", ctx)
	}
	if str(get(p, "datasource", "uid")) != "${datasource}" {
		t.Errorf("%s: datasource must be the ${datasource} variable", ctx)
	}
	conditional := p[ConditionalField] == true
	if conditional != strings.HasPrefix(desc, "Conditional:") {
		t.Errorf("%s: %s=%v but description starts %q", ctx, ConditionalField, conditional, desc[:min(len(desc), 20)])
	}
	targets, _ := p["targets"].([]any)
	if len(targets) == 0 {
		t.Errorf("%s: no targets", ctx)
	}
	for _, tv := range targets {
		tg, _ := tv.(map[string]any)
		expr := str(tg["expr"])
		if str(get(tg, "datasource", "uid")) != "${datasource}" {
			t.Errorf("%s: target %v datasource must be ${datasource}", ctx, tg["refId"])
		}
		sels, err := Selectors(expr)
		if err != nil || len(sels) == 0 {
			t.Errorf("%s: %q: no selectors (%v)", ctx, expr, err)
			continue
		}
		for _, s := range sels {
			if !known[s.Metric] {
				t.Errorf("%s: unknown metric %q in %q", ctx, s.Metric, expr)
			}
			if flag, ok := optInMetrics[s.Metric]; ok && !strings.Contains(desc, flag) {
				t.Errorf("%s: reads %s, which only the opt-in collector gives, but its description does not say %s", ctx, s.Metric, flag)
			}
			if conditionalMetrics[s.Metric] && !conditional {
				t.Errorf("%s: reads %s, which only some builds have, but is not marked %s", ctx, s.Metric, ConditionalField)
			}
			has := map[string]bool{}
			for _, m := range s.Matchers {
				has[m] = true
			}
			if !has[appFilter] || !has[`job=~"$job"`] || !has[`instance=~"$instance"`] {
				t.Errorf("%s: selector %s{%s} is not filtered by %s, job=~\"$job\" and instance=~\"$instance\"", ctx, s.Metric, strings.Join(s.Matchers, ","), appFilter)
			}
		}
		for _, s := range sels {
			if s.Range != "" && !grafanaRanges[s.Range] && !windows[s.Range] {
				t.Errorf("%s: %s[%s] is a fixed window; use $__interval, $__range or an alert's window from thresholds.yml", ctx, s.Metric, s.Range)
			}
		}
		calls, err := RangeCalls(expr, "rate", "irate", "increase")
		if err != nil {
			t.Errorf("%s: %v", ctx, err)
		}
		// A panel that draws an alert's threshold shows the alert's own
		// quantity, over the alert's window: only there may a rate function
		// take a window of thresholds.yml.
		_, drawsThreshold := p[ThresholdsField]
		for _, c := range calls {
			if len(c.Ranges) == 0 {
				t.Errorf("%s: %s without a range in %q", ctx, c.Func, expr)
			}
			for _, r := range c.Ranges {
				if r != "$__rate_interval" && !(drawsThreshold && windows[r]) {
					t.Errorf("%s: %s over [%s], want [$__rate_interval] in %q", ctx, c.Func, r, expr)
				}
			}
		}
	}

	// Thresholds: the steps must be exactly the listed thresholds.yml values,
	// and time series must draw them as lines.
	var keys []string
	if ks, ok := p[ThresholdsField].([]any); ok {
		for _, k := range ks {
			keys = append(keys, str(k))
		}
	}
	var want []float64
	for _, k := range keys {
		want = append(want, thresholdValue(t, thDoc, k))
		drawn[k] = true
	}
	sort.Float64s(want)
	var got []float64
	steps, _ := get(p, "fieldConfig", "defaults", "thresholds", "steps").([]any)
	for _, sv := range steps {
		s, _ := sv.(map[string]any)
		if v, ok := s["value"].(float64); ok {
			got = append(got, v)
		}
	}
	sort.Float64s(got)
	// A panel that draws alert levels has exactly those steps; one that draws
	// none may colour by its own steps (a stat red from 1), which time series
	// then must not draw as lines (checked below).
	if len(keys) > 0 && fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: threshold steps %v, want %v from alerts/thresholds.yml (%v)", ctx, got, want, keys)
	}
	if typ == "timeseries" {
		mode := str(get(p, "fieldConfig", "defaults", "custom", "thresholdsStyle", "mode"))
		if len(keys) > 0 && mode != "line" {
			t.Errorf("%s: draws alert thresholds with thresholdsStyle %q, want line", ctx, mode)
		}
		if len(keys) == 0 && mode != "off" {
			t.Errorf("%s: thresholdsStyle %q without alert thresholds", ctx, mode)
		}
	}
}

// TestQueriesParse runs every panel query, with the variables filled in,
// through Prometheus' own parser (promtool check rules on recording rules).
func TestQueriesParse(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rec
	for _, d := range all {
		for _, p := range d.Panels {
			for n, e := range p.Exprs {
				rules = append(rules, rec{
					Record: fmt.Sprintf("dashboard:%s:panel_%d_%d", strings.ReplaceAll(d.UID, "-", "_"), p.ID, n),
					Expr:   Interpolate(e, panelVars),
				})
			}
		}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboards.rules.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("a dashboard query does not parse: %v\n%s", err, res)
	}
}

func TestMetricNamesKnown(t *testing.T) {
	known := knownNames(t)
	check := func(where, expr string) {
		names, err := MetricNames(expr)
		if err != nil {
			t.Errorf("%s: %v", where, err)
		}
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, n := range names {
			if !known[n] {
				t.Errorf("%s: unknown metric %q", where, n)
			}
		}
	}
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		for _, p := range d.Panels {
			for _, e := range p.Exprs {
				check(d.File+": "+p.Title, e)
			}
		}
	}
	rules, err := alerts.Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		check("alert "+r.Alert, r.Expr)
	}
}

func TestHelper(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(wantFiles) {
		t.Fatalf("All() = %d dashboards, want %d", len(all), len(wantFiles))
	}
	conditional := 0
	for _, d := range all {
		if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
			t.Errorf("%s: incomplete summary", d.File)
		}
		for _, p := range d.Panels {
			if len(p.Exprs) == 0 || len(p.Exprs) != len(p.Instant) {
				t.Errorf("%s %q: exprs %d, instant %d", d.File, p.Title, len(p.Exprs), len(p.Instant))
			}
			if p.Conditional {
				conditional++
			}
		}
	}
	if conditional == 0 {
		t.Error("no conditional panels: the lock counter panels must be marked")
	}
}

func TestScanner(t *testing.T) {
	cases := map[string][]string{
		`sum by (job, instance) (rate(beam_reductions_total{job=~"$job"}[$__rate_interval]))`: {"beam_reductions_total"},
		`a / ignoring (kind) group_left () sum without (kind) (b{x="}{,"})`:                   {"a", "b"},
		`count(beam_up == 0) or vector(0)`:                                                    {"beam_up"},
		`time() - beam_start_time_seconds offset 5m`:                                          {"beam_start_time_seconds"},
		`deriv(max without (rank) (beam_process_message_queue_length)[10m:]) > 1e3`:           {"beam_process_message_queue_length"},
		`topk(10, x) and on (instance) y # comment z`:                                         {"x", "y"},
	}
	for expr, want := range cases {
		got, err := MetricNames(expr)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("MetricNames(%q) = %v, %v; want %v", expr, got, err, want)
		}
	}
	calls, err := RangeCalls(`irate(a[1m]) + rate(b[$__rate_interval]) + increase(c[5m:1m])`, "rate", "irate", "increase")
	if err != nil || len(calls) != 3 || calls[0].Ranges[0] != "1m" || calls[1].Ranges[0] != "$__rate_interval" || calls[2].Ranges[0] != "5m:1m" {
		t.Errorf("RangeCalls = %+v, %v", calls, err)
	}
	sels, _ := Selectors(`m{ job=~"$job" , instance=~"$instance"}[5m]`)
	if len(sels) != 1 || !reflect.DeepEqual(sels[0].Matchers, []string{`job=~"$job"`, `instance=~"$instance"`}) || sels[0].Range != "5m" {
		t.Errorf("Selectors = %+v", sels)
	}
	got := Interpolate(`rate(m{job=~"$job",instance=~"${instance}"}[$__rate_interval]) $unknown`,
		map[string]string{"job": "a|b", "instance": ".+", "__rate_interval": "1m"})
	if got != `rate(m{job=~"a|b",instance=~".+"}[1m]) $unknown` {
		t.Errorf("Interpolate = %q", got)
	}
}

// syntheticSeries is a small, plausible scrape of two nodes in promtool's
// input_series notation, one sample a minute for an hour.
func syntheticSeries() map[string]string {
	s := map[string]string{}
	for n, inst := range []string{"node-a:9537", "node-b:9537"} {
		l := func(extra string) string {
			base := `job="beam",instance="` + inst + `"`
			if extra != "" {
				base += "," + extra
			}
			return "{" + base + "}"
		}
		k := float64(n + 1)
		gauge := func(v float64) string { return fmt.Sprintf("%gx60", v) }
		counter := func(step float64) string { return fmt.Sprintf("0+%gx60", step) }
		s["beam_up"+l("")] = gauge(1)
		s["beam_node_info"+l(`otp_release="26",erts_version="14.2.5"`)] = gauge(1)
		s["beam_start_time_seconds"+l("")] = gauge(-7200)
		s["beam_exporter_build_info"+l(`version="0.1.0"`)] = gauge(1)
		for _, typ := range []string{"normal", "dirty_cpu", "dirty_io"} {
			s["beam_scheduler_utilization_ratio"+l(`type="`+typ+`"`)] = gauge(0.3 * k)
			s["beam_schedulers"+l(`type="`+typ+`"`)] = gauge(4)
			s["beam_run_queue_length"+l(`type="`+typ+`"`)] = gauge(2 * k)
		}
		for i, kind := range []string{"processes", "atom", "binary", "code", "ets", "other"} {
			s["beam_memory_bytes"+l(`kind="`+kind+`"`)] = fmt.Sprintf("%g+%gx60", 1e7*float64(i+1)*k, 1e5*k)
		}
		for _, m := range [][2]string{{"beam_processes", "beam_process_limit"}, {"beam_ports", "beam_port_limit"},
			{"beam_atoms", "beam_atom_limit"}, {"beam_ets_tables", "beam_ets_table_limit"}} {
			s[m[0]+l("")] = gauge(1000 * k)
			s[m[1]+l("")] = gauge(100000)
		}
		s["beam_gc_runs_total"+l("")] = counter(600)
		s["beam_gc_reclaimed_bytes_total"+l("")] = counter(6e7)
		for _, tt := range []string{"scheduler", "dirty_cpu_scheduler", "dirty_io_scheduler", "aux"} {
			for st, v := range map[string]float64{"gc": 6, "emulator": 50, "sleep": 160, "other": 4} {
				s["beam_msacc_seconds_total"+l(`thread_type="`+tt+`",state="`+st+`"`)] = counter(v)
			}
		}
		for rank, proc := range []string{"my_app_worker", "logger", "'Elixir.MyApp.Cache':init/1"} {
			r := fmt.Sprintf(`rank="%d",process="%s"`, rank+1, proc)
			s["beam_process_memory_bytes"+l(r)] = gauge(1e6 * float64(3-rank) * k)
			s["beam_process_message_queue_length"+l(r)] = fmt.Sprintf("%g+%gx60", 100*float64(3-rank), 10*k)
			s["beam_process_reductions_per_second"+l(r)] = gauge(1e4 * float64(3-rank))
		}
		for i, group := range []string{"my_app_worker:init/1", "logger", "other"} {
			g := `group="` + group + `"`
			s["beam_process_group_memory_bytes"+l(g)] = gauge(1e7 * float64(3-i) * k)
			s["beam_process_group_processes"+l(g)] = gauge(1e3 * float64(3-i))
			s["beam_process_group_message_queue_length"+l(g)] = gauge(10 * float64(3-i))
			s["beam_process_group_reductions_per_second"+l(g)] = gauge(1e4 * float64(3-i))
		}
		for i, table := range []string{"my_cache", "sessions"} {
			s["beam_ets_table_memory_bytes"+l(`table="`+table+`"`)] = gauge(1e6 * float64(2-i))
			s["beam_ets_table_objects"+l(`table="`+table+`"`)] = gauge(1e3 * float64(2-i))
		}
		s["beam_reductions_total"+l("")] = counter(6e7)
		s["beam_context_switches_total"+l("")] = counter(6e4)
		s["beam_io_received_bytes_total"+l("")] = counter(6e5)
		s["beam_io_sent_bytes_total"+l("")] = counter(3e5)
		s["beam_cpu_seconds_total"+l("")] = counter(90)
		s["beam_lock_counting_available"+l("")] = gauge(1)
		for _, lock := range []string{"run_queue", "db_tab"} {
			s["beam_lock_collisions_total"+l(`lock="`+lock+`"`)] = counter(60)
			s["beam_lock_acquisitions_total"+l(`lock="`+lock+`"`)] = counter(6000)
		}
		s["beam_mnesia_held_locks"+l("")] = gauge(3 * k)
		s["beam_mnesia_lock_queue_length"+l("")] = gauge(k)
		s["beam_mnesia_transactions_total"+l(`outcome="committed"`)] = counter(6000 * k)
		s["beam_mnesia_transactions_total"+l(`outcome="failed"`)] = counter(6 * k)
		s["beam_mnesia_transaction_restarts_total"+l("")] = counter(60 * k)
		s["beam_mnesia_transaction_log_writes_total"+l("")] = counter(600 * k)
		s["beam_mnesia_table_memory_bytes"+l(`table="orders",storage="disc_copies"`)] = gauge(1e7 * k)
		s["beam_mnesia_table_records"+l(`table="orders",storage="disc_copies"`)] = gauge(1e4 * k)
		for _, d := range []string{"tcp_inet", "udp_inet", "spawn"} {
			s["beam_ports_by_driver"+l(`driver="`+d+`"`)] = gauge(10 * k)
		}
		s["beam_sockets"+l("")] = gauge(2 * k)
		for _, typ := range []string{"normal", "dirty_cpu", "dirty_io"} {
			s["beam_active_tasks"+l(`type="`+typ+`"`)] = gauge(k)
		}
		s["beam_dist_buffer_busy_limit_bytes"+l("")] = gauge(1 << 20)
		for _, peer := range []string{"peer_a@host", "peer_b@host"} {
			p := `peer="` + peer + `"`
			s["beam_dist_link_info"+l(p+`,controller="port"`)] = gauge(1)
			s["beam_dist_sent_bytes_total"+l(p)] = counter(6e5 * k)
			s["beam_dist_received_bytes_total"+l(p)] = counter(3e5 * k)
			s["beam_dist_sent_packets_total"+l(p)] = counter(600 * k)
			s["beam_dist_received_packets_total"+l(p)] = counter(300 * k)
			s["beam_dist_send_queue_bytes"+l(p)] = gauge(100 * k)
			s["beam_dist_link_connections_total"+l(p)] = counter(0.05 * k)
		}
		for _, reason := range []string{"connection_closed", "net_tick_timeout", "disconnect"} {
			s["beam_dist_disconnections_total"+l(`reason="`+reason+`"`)] = counter(0.02 * k)
		}
		for _, e := range []string{"long_gc", "long_schedule", "large_heap", "busy_port", "busy_dist_port"} {
			s["beam_system_monitor_events_total"+l(`event="`+e+`"`)] = counter(k)
		}
		s["beam_system_monitor_events_by_source_total"+l(`event="long_gc",source="my_app_worker"`)] = counter(k)
		s["beam_system_monitor_long_gc_seconds_sum"+l("")] = counter(0.2 * k)
		s["beam_os_resident_memory_bytes"+l("")] = gauge(3e8 * k)
		for i, a := range []string{"binary_alloc", "eheap_alloc", "ll_alloc"} {
			for j, c := range []string{"mbcs", "sbcs"} {
				carriers := 1e8 * float64(i+1) * float64(j+1) * k
				s["beam_allocator_carriers_bytes"+l(`allocator="`+a+`",carrier="`+c+`"`)] = gauge(carriers)
				s["beam_allocator_blocks_bytes"+l(`allocator="`+a+`",carrier="`+c+`"`)] = gauge(carriers * (0.3 + 0.3*float64(j)))
			}
		}
		for i, kind := range []string{"processes", "atom"} {
			s["beam_memory_used_bytes"+l(`kind="`+kind+`"`)] = gauge(0.9e7 * float64(i+1) * k)
		}
		s["beam_persistent_terms"+l("")] = gauge(30)
		s["beam_persistent_term_memory_bytes"+l("")] = gauge(3e4)
		for _, c := range []string{"scheduler", "run_queue", "memory", "system_limits", "gc", "msacc", "processes", "process_groups", "ets", "runtime", "locks", "node", "dist", "ports", "allocators", "os_memory", "persistent_terms"} {
			s["beam_scrape_collector_duration_seconds"+l(`collector="`+c+`"`)] = gauge(0.01)
			s["beam_scrape_collector_success"+l(`collector="`+c+`"`)] = gauge(1)
		}
	}
	return s
}

// TestQueriesReturnData evaluates every panel query, with All selected, on
// synthetic series of every metric and the shipped rules with Prometheus'
// engine (promtool test rules) and requires each to return at least one
// sample. It catches vector
// matching that silently yields nothing; the live end-to-end test repeats
// this against a real exporter.
func TestQueriesReturnData(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	series := syntheticSeries()
	var input []any
	for _, k := range slices.Sorted(maps.Keys(series)) {
		input = append(input, map[string]any{"series": k, "values": series[k]})
	}
	var exprTests []any
	for _, d := range all {
		for _, p := range d.Panels {
			for _, e := range p.Exprs {
				exprTests = append(exprTests, map[string]any{
					"expr":        "clamp_max(count(" + Interpolate(e, panelVars) + "), 1)",
					"eval_time":   "50m",
					"exp_samples": []any{map[string]any{"labels": "{}", "value": 1}},
				})
			}
		}
	}
	// The shipped rules, so that the recorded series the panels read exist.
	// promtool evaluates every group at the test's evaluation_interval.
	th, err := alerts.DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs(filepath.Join("..", "alerts", alerts.RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	doc := map[string]any{
		"rule_files":          []string{rules},
		"evaluation_interval": th.ProcessRankings.Interval.Text,
		"tests": []any{map[string]any{
			"interval":         "1m",
			"input_series":     input,
			"promql_expr_test": exprTests,
		}},
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "queries_test.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(promtool, "test", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("a dashboard query returns no data on synthetic series (got: nothing): %v\n%s", err, res)
	}
}

// TestFleetPanels checks the fleet dashboard's small fixes: "Nodes down" is
// coloured by a threshold (red from 1), not a value mapping, and "Hottest
// nodes" shows the topk, not every node.
func TestFleetPanels(t *testing.T) {
	var d map[string]any
	if err := json.Unmarshal(Files()["beam-fleet.json"], &d); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	panels, _ := d["panels"].([]any)
	for _, pv := range panels {
		p, _ := pv.(map[string]any)
		title := str(p["title"])
		targets, _ := p["targets"].([]any)
		switch {
		case title == "Nodes down":
			found["down"] = true
			if m, _ := get(p, "fieldConfig", "defaults", "mappings").([]any); len(m) != 0 {
				t.Errorf("Nodes down: value mappings %v, want none", m)
			}
			steps, _ := get(p, "fieldConfig", "defaults", "thresholds", "steps").([]any)
			if got := fmt.Sprint(steps); got != "[map[color:green value:<nil>] map[color:red value:1]]" {
				t.Errorf("Nodes down: threshold steps %s, want green, then red from 1", got)
			}
			if str(get(p, "fieldConfig", "defaults", "color", "mode")) != "thresholds" {
				t.Error("Nodes down: colour mode must be thresholds")
			}
		case strings.HasPrefix(title, "Hottest"):
			found["hottest"] = true
			tg, _ := targets[0].(map[string]any)
			if !strings.Contains(str(tg["expr"]), "topk(") {
				t.Errorf("%s: %s does not use topk", title, tg["expr"])
			}
		}
	}
	if !found["down"] || !found["hottest"] {
		t.Errorf("panels found: %v", found)
	}
}
