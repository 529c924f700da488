package alerts

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// requiredAlerts lists every alert the rule file must carry, with its levels.
var requiredAlerts = map[string][]string{
	"BEAMDown":                     {"warning"},
	"BEAMNodesDown":                {"critical"},
	"BEAMSchedulerSaturation":      {"warning"},
	"BEAMRunQueueBacklog":          {"warning"},
	"BEAMProcessLimit":             {"warning", "critical"},
	"BEAMPortLimit":                {"warning", "critical"},
	"BEAMAtomLimit":                {"warning", "critical"},
	"BEAMETSTableLimit":            {"warning"},
	"BEAMMailboxGrowing":           {"warning"},
	"BEAMMemoryGrowth":             {"warning"},
	"BEAMBinaryMemoryGrowth":       {"warning"},
	"BEAMETSMemoryGrowth":          {"warning"},
	"BEAMProcessGrowth":            {"warning"},
	"BEAMGCPressure":               {"warning"},
	"BEAMExporterCollectorFailing": {"warning"},
	"BEAMDistLinkBlocked":          {"warning"},
	"BEAMDistLinkFlapping":         {"warning"},
	"BEAMAllocatorFragmentation":   {"warning"},
}

// optInAlerts are generated only when thresholds.yml enables them; the
// shipped rule file leaves them out.
var optInAlerts = map[string][]string{
	"BEAMExporterDown": {"warning"},
}

// jobAlerts are about a whole job rather than one instance: they carry job
// and the application label, not instance.
var jobAlerts = map[string]bool{"BEAMNodesDown": true}

// optInThresholds returns the shipped thresholds with every opt-in rule
// enabled and the selector the opt-in tests (alerts/tests/optin) assume.
func optInThresholds(t *testing.T) Thresholds {
	t.Helper()
	th, err := DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	th.Selector = `job="beam"`
	th.ExporterDown.Enabled = true
	if err := th.Validate(); err != nil {
		t.Fatal(err)
	}
	return th
}

// optInRulesFile is the rule file the tests in alerts/tests/optin read.
const optInRulesFile = "optin.rules.yml"

// tool returns the path of a required command line tool. A missing tool fails
// the test with the command that installs it: these checks are part of the
// proof and must not be skipped.
func tool(t *testing.T, name, debPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (needed to check the alert rules). Install it with:\n\tapt-get install -y %s\n(as root; use sudo otherwise)", name, debPackage)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRuleFileUpToDate(t *testing.T) {
	data, err := os.ReadFile(ThresholdsFile)
	if err != nil {
		t.Fatal(err)
	}
	th, err := ParseThresholds(data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Generate(th, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(RulesFile)
	if err != nil {
		t.Fatalf("%v: run make alerts", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("alerts/%s is out of date with alerts/%s: run make alerts (go run ./alerts/gen) and commit the result", RulesFile, ThresholdsFile)
	}
	if !bytes.Equal(RuleFiles()[RulesFile], got) {
		t.Fatalf("embedded %s differs from the file on disk", RulesFile)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	out := run(t, promtool, "check", "rules", RulesFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules: %s", out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	files, err := filepath.Glob("tests/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no unit tests in alerts/tests (%v)", err)
	}
	out := run(t, promtool, append([]string{"test", "rules"}, files...)...)
	if strings.Contains(out, "FAILED") {
		t.Fatalf("promtool test rules: %s", out)
	}
}

// TestPromtoolTestOptInRules runs alerts/tests/optin against rules generated
// with every opt-in rule enabled and selector job="beam".
func TestPromtoolTestOptInRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	rules, err := Generate(optInThresholds(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, optInRulesFile), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("tests/optin/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no unit tests in alerts/tests/optin (%v)", err)
	}
	var args []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, dst)
	}
	out := run(t, promtool, append([]string{"test", "rules"}, args...)...)
	if strings.Contains(out, "FAILED") {
		t.Fatalf("promtool test rules: %s", out)
	}
}

// TestSelector checks that a configured selector reaches every selector of
// every rule, alerting and recording.
func TestSelector(t *testing.T) {
	th := optInThresholds(t)
	th.Selector = `job=~"beam|payments", env!="dev"`
	if err := th.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := Generate(th, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rf, err := ParseRuleFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// Every metric name followed by its selector: a recorded series read by
	// another recording rule is already filtered.
	sel := regexp.MustCompile(`(?:^|[^:\w])(beam_[a-z_]+|up)\b(\{[^}]*\})?`)
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			for _, m := range sel.FindAllStringSubmatch(r.Expr, -1) {
				n++
				if !strings.HasPrefix(m[2], `{job=~"beam|payments", env!="dev"`) {
					t.Errorf("%s%s: selector %s%s does not start with the configured selector", r.Alert, r.Record, m[1], m[2])
				}
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d selectors found", n)
	}
}

func TestAmtoolCheckConfig(t *testing.T) {
	amtool := tool(t, "amtool", "prometheus-alertmanager")
	out := run(t, amtool, "check-config", AlertmanagerExampleFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("amtool check-config: %s", out)
	}
	// Severity routing.
	for sev, want := range map[string]string{"critical": "beam-critical", "warning": "beam-warning"} {
		run(t, amtool, "config", "routes", "test", "--config.file="+AlertmanagerExampleFile,
			"--verify.receivers="+want, "alertname=BEAMDown", "severity="+sev)
	}
}

// TestAlertmanagerGrouping checks that every route groups by alertname, job
// and the application label of thresholds.yml, never by instance: a fleet
// sends one notification per alert and application, not one per node.
func TestAlertmanagerGrouping(t *testing.T) {
	th, err := DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	type route struct {
		GroupBy []string `yaml:"group_by"`
		Routes  []route  `yaml:"routes"`
	}
	var cfg struct {
		Route route `yaml:"route"`
	}
	if err := yaml.Unmarshal(AlertmanagerExample(), &cfg); err != nil {
		t.Fatal(err)
	}
	want := "alertname,job," + th.AppLabel
	if got := strings.Join(cfg.Route.GroupBy, ","); got != want {
		t.Errorf("route.group_by = [%s], want [%s]", got, want)
	}
	var walk func(string, []route)
	walk = func(path string, rs []route) {
		for i, r := range rs {
			if r.GroupBy != nil {
				t.Errorf("%s.routes[%d] sets its own group_by %v; inherit the top-level one", path, i, r.GroupBy)
			}
			walk(fmt.Sprintf("%s.routes[%d]", path, i), r.Routes)
		}
	}
	walk("route", cfg.Route.Routes)
}

func TestAlertmanagerInhibition(t *testing.T) {
	var cfg struct {
		InhibitRules []struct {
			SourceMatchers []string `yaml:"source_matchers"`
			TargetMatchers []string `yaml:"target_matchers"`
			Equal          []string `yaml:"equal"`
		} `yaml:"inhibit_rules"`
	}
	if err := yaml.Unmarshal(AlertmanagerExample(), &cfg); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, r := range cfg.InhibitRules {
		eq := append([]string(nil), r.Equal...)
		sort.Strings(eq)
		if !slices.Contains(eq, "instance") {
			t.Errorf("inhibit rule %v: equal %v must keep instance, or one node's alert mutes the whole fleet's", r.SourceMatchers, r.Equal)
		}
		switch strings.Join(r.SourceMatchers, ",") {
		case `alertname="BEAMDown"`:
			found["down"] = true
			if strings.Join(eq, ",") != "instance,job" {
				t.Errorf("BEAMDown inhibition must match on instance and job, got %v", r.Equal)
			}
		case `severity="critical"`:
			found["severity"] = true
			if strings.Join(eq, ",") != "alertname,instance,job" {
				t.Errorf("critical-mutes-warning inhibition must match on alertname, instance and job, got %v", r.Equal)
			}
		}
	}
	if !found["down"] || !found["severity"] {
		t.Fatalf(`want an inhibit rule with source_matchers [alertname="BEAMDown"] and one with [severity="critical"], found %v`, found)
	}
}

func TestRuleConventions(t *testing.T) {
	th, err := DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	const runbookBase = "https://github.com/beam-exporter/beam_exporter/blob/main/observability.md"
	if th.RunbookBaseURL != runbookBase {
		t.Errorf("runbook_base_url is %q, want %q", th.RunbookBaseURL, runbookBase)
	}
	shipped, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	optIn := BuildRules(optInThresholds(t))
	seen := map[string][]string{}
	for _, r := range shipped {
		seen[r.Alert] = append(seen[r.Alert], r.Labels.Severity)
	}
	for name := range optInAlerts {
		if seen[name] != nil {
			t.Errorf("%s is opt-in but the shipped rule file has it", name)
		}
	}
	seen = map[string][]string{}
	for _, r := range optIn {
		seen[r.Alert] = append(seen[r.Alert], r.Labels.Severity)
		if r.Labels.Severity != "warning" && r.Labels.Severity != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.Alert, r.Labels.Severity)
		}
		if _, err := ParseDuration(r.For); err != nil {
			t.Errorf("%s: for: %v", r.Alert, err)
		}
		a := r.Annotations
		if a.Summary == "" {
			t.Errorf("%s: no summary", r.Alert)
		}
		who := "{{ $labels.instance }}"
		if jobAlerts[r.Alert] {
			who = "{{ $labels.job }}"
		}
		for _, want := range []string{"{{ $value", who} {
			if !strings.Contains(a.Description, want) {
				t.Errorf("%s: description does not quote %s", r.Alert, want)
			}
		}
		wantURL := runbookBase + "#" + Anchor(r.Alert)
		if a.RunbookURL != wantURL {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, a.RunbookURL, wantURL)
		}
	}
	all := maps.Clone(requiredAlerts)
	maps.Copy(all, optInAlerts)
	for name, sevs := range all {
		if strings.Join(seen[name], ",") != strings.Join(sevs, ",") {
			t.Errorf("%s: levels %v, want %v", name, seen[name], sevs)
		}
	}
	for name := range seen {
		if _, ok := all[name]; !ok {
			t.Errorf("%s: not in requiredAlerts or optInAlerts; add it there and give it unit tests", name)
		}
	}
}

// promtoolTest is the part of a promtool unit test file the coverage check needs.
type promtoolTest struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestUnitTestCoverage checks that every rule (alert name and severity) has a
// unit test case where it fires and one where it must not fire, and that
// firing cases assert labels and annotations.
func TestUnitTestCoverage(t *testing.T) {
	rules := BuildRules(optInThresholds(t))
	files, _ := filepath.Glob("tests/*.yml")
	optInFiles, _ := filepath.Glob("tests/optin/*.yml")
	fires := map[string]bool{}
	silent := map[string]bool{}
	for _, f := range append(files, optInFiles...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var pt promtoolTest
		if err := yaml.Unmarshal(data, &pt); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		wantRules := "../" + RulesFile
		if filepath.Base(filepath.Dir(f)) == "optin" {
			wantRules = optInRulesFile
		}
		if len(pt.RuleFiles) != 1 || pt.RuleFiles[0] != wantRules {
			t.Errorf("%s: rule_files must be [%s], got %v", f, wantRules, pt.RuleFiles)
		}
		for _, tc := range pt.Tests {
			for _, at := range tc.AlertRuleTest {
				sevs := map[string]bool{}
				for _, ea := range at.ExpAlerts {
					sev := ea.ExpLabels["severity"]
					sevs[sev] = true
					want := []string{"severity", "instance", "job"}
					if jobAlerts[at.Alertname] {
						want = []string{"severity", "job"}
						if _, ok := ea.ExpLabels["instance"]; ok {
							t.Errorf("%s %q %s@%s: a job-level alert has no instance label", f, tc.Name, at.Alertname, at.EvalTime)
						}
					}
					for _, l := range want {
						if ea.ExpLabels[l] == "" {
							t.Errorf("%s %q %s@%s: exp_labels without %s", f, tc.Name, at.Alertname, at.EvalTime, l)
						}
					}
					for _, a := range []string{"summary", "description", "runbook_url"} {
						if ea.ExpAnnotations[a] == "" {
							t.Errorf("%s %q %s@%s: exp_annotations without %s", f, tc.Name, at.Alertname, at.EvalTime, a)
						}
					}
				}
				for _, sev := range []string{"warning", "critical"} {
					key := at.Alertname + "/" + sev
					if sevs[sev] {
						fires[key] = true
					} else {
						silent[key] = true
					}
				}
			}
		}
	}
	for _, r := range rules {
		key := r.Alert + "/" + r.Labels.Severity
		if !fires[key] {
			t.Errorf("%s (%s): no unit test case in alerts/tests where it fires", r.Alert, r.Labels.Severity)
		}
		if !silent[key] {
			t.Errorf("%s (%s): no unit test case in alerts/tests where it must not fire", r.Alert, r.Labels.Severity)
		}
	}
}

func TestForOverride(t *testing.T) {
	th, err := DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Generate(th, Options{For: "5s"})
	if err != nil {
		t.Fatal(err)
	}
	rf, err := ParseRuleFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rf.Groups[0].Rules {
		if r.For != "5s" {
			t.Errorf("%s: for %q, want 5s", r.Alert, r.For)
		}
	}
	if _, err := Generate(th, Options{For: "soon"}); err == nil {
		t.Error("a bad for override was accepted")
	}
	out, err = Generate(th, Options{RecordInterval: "2s"})
	if err != nil {
		t.Fatal(err)
	}
	if rf, err = ParseRuleFile(out); err != nil {
		t.Fatal(err)
	}
	if g := rf.Groups[1]; g.Name != RecordGroupName || g.Interval != "2s" || !strings.Contains(g.Rules[3].Expr, "[2s]") {
		t.Errorf("record interval override: group %s interval %q, peak expr %q", g.Name, g.Interval, g.Rules[3].Expr)
	}
}

func TestThresholdsRejected(t *testing.T) {
	base := string(ThresholdsYAML())
	cases := map[string]struct{ from, to, want string }{
		"unknown key":          {"node_down:", "node_dwn:", "node_dwn"},
		"warning >= critical":  {"    above: 0.90\n", "    above: 0.5\n", "must be below"},
		"ratio above 1":        {"    above: 0.10\n", "    above: 10\n", "at most 1"},
		"bad duration":         {"  window: 5m\n", "  window: five\n", "invalid duration"},
		"missing level":        {"  critical:\n    above: 0.75\n    for: 5m\n", "", "atom_limit.critical: missing"},
		"level not used":       {"scheduler_saturation:\n", "scheduler_saturation:\n  critical:\n    above: 0.95\n    for: 10m\n", "scheduler_saturation.critical: not used"},
		"bad selector":         {"selector: ''", "selector: 'job=beam'", "selector: want label matchers"},
		"bad app label":        {"app_label: app", "app_label: instance", "app_label"},
		"exporter_down no sel": {"  enabled: false", "  enabled: true", "exporter_down: needs a selector"},
		"no record interval":   {"  interval: 1m\n", "", "process_rankings.interval: missing"},
	}
	for name, c := range cases {
		if !strings.Contains(base, c.from) {
			t.Fatalf("%s: %q not in thresholds.yml", name, c.from)
		}
		_, err := ParseThresholds([]byte(strings.Replace(base, c.from, c.to, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestLookup(t *testing.T) {
	th, err := DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	v, err := th.Lookup("process_limit.critical.above")
	if err != nil || v != *th.ProcessLimit.Critical.Above {
		t.Errorf("Lookup = %v, %v", v, err)
	}
	for _, bad := range []string{"node_down.warning.above", "scheduler_saturation.critical.above", "nope.warning.above", "run_queue.window", "run_queue.critical.above"} {
		if _, err := th.Lookup(bad); err == nil {
			t.Errorf("Lookup(%q) did not fail", bad)
		}
	}
}

// TestRunbookAnchors checks, once observability.md exists at the repository
// root, that it has a "### <AlertName>" heading for every alert.
func TestRunbookAnchors(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "observability.md"))
	if os.IsNotExist(err) {
		t.Log("observability.md does not exist yet; runbook anchors not checked")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range BuildRules(optInThresholds(t)) {
		heading := regexp.MustCompile(`(?m)^#{2,4} ` + regexp.QuoteMeta(r.Alert) + `\s*$`)
		anchor := regexp.MustCompile(`id="` + regexp.QuoteMeta(Anchor(r.Alert)) + `"`)
		if !heading.Match(doc) && !anchor.Match(doc) {
			t.Errorf("observability.md has no section for %s (heading \"### %s\" or anchor #%s)", r.Alert, r.Alert, Anchor(r.Alert))
		}
	}
}

// thresholdKeys maps each alert with a numeric level to its thresholds.yml key.
var thresholdKeys = map[string]string{
	"BEAMNodesDown":              "nodes_down",
	"BEAMSchedulerSaturation":    "scheduler_saturation",
	"BEAMRunQueueBacklog":        "run_queue",
	"BEAMProcessLimit":           "process_limit",
	"BEAMPortLimit":              "port_limit",
	"BEAMAtomLimit":              "atom_limit",
	"BEAMETSTableLimit":          "ets_table_limit",
	"BEAMMailboxGrowing":         "mailbox",
	"BEAMMemoryGrowth":           "memory_growth",
	"BEAMBinaryMemoryGrowth":     "binary_growth",
	"BEAMETSMemoryGrowth":        "ets_growth",
	"BEAMProcessGrowth":          "process_growth",
	"BEAMGCPressure":             "gc_pressure",
	"BEAMAllocatorFragmentation": "allocator_fragmentation",
	"BEAMDistLinkBlocked":        "dist_link_blocked",
	"BEAMDistLinkFlapping":       "dist_link_flapping",
}

// TestThresholdTable checks observability.md's "Thresholds at a glance"
// table against the generated rules: one row per alert and severity, with
// the rule's level and for.
func TestThresholdTable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "### Thresholds at a glance\n")
	if start < 0 {
		t.Fatal(`observability.md has no "### Thresholds at a glance" section`)
	}
	section := text[start+1:]
	section = section[:strings.Index(section, "\n#")]
	rowRE := regexp.MustCompile(`(?m)^\| \[(\w+)\]\(#(\w+)\)[^|]*\| (\w+) \|[^|]*\|([^|]*)\|([^|]*)\|$`)
	rows := map[string][2]string{}
	for _, m := range rowRE.FindAllStringSubmatch(section, -1) {
		if m[2] != Anchor(m[1]) {
			t.Errorf("row %s links #%s, want #%s", m[1], m[2], Anchor(m[1]))
		}
		key := m[1] + "/" + m[3]
		if _, dup := rows[key]; dup {
			t.Errorf("two rows for %s", key)
		}
		rows[key] = [2]string{strings.TrimSpace(m[4]), strings.TrimSpace(m[5])}
	}
	th := optInThresholds(t)
	rules := BuildRules(th)
	if len(rows) != len(rules) {
		t.Errorf("the table has %d rows, the rules (opt-in ones included) %d", len(rows), len(rules))
	}
	for _, r := range rules {
		key := r.Alert + "/" + r.Labels.Severity
		row, ok := rows[key]
		if !ok {
			t.Errorf("no row for %s", key)
			continue
		}
		if row[1] != r.For {
			t.Errorf("%s: for %q in the table, %q in the rules", key, row[1], r.For)
		}
		want := ""
		if k, ok := thresholdKeys[r.Alert]; ok {
			v, err := th.Lookup(k + "." + r.Labels.Severity + ".above")
			if err != nil {
				t.Fatal(err)
			}
			want = num(v)
			if row[0] == pct(v) {
				want = pct(v)
			}
		}
		if row[0] != want {
			t.Errorf("%s: above %q in the table, want %q", key, row[0], want)
		}
	}
}

// TestDocGCShare checks that observability.md gives the GC share as the
// BEAMGCPressure rule computes it (states gc and gc_full).
func TestDocGCShare(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Alert != "BEAMGCPressure" {
			continue
		}
		lines := strings.Split(r.Expr, "\n")
		share := strings.Join(lines[:len(lines)-1], "\n") // without "> level"
		if !strings.Contains(string(doc), "```promql\n"+share+"\n```") {
			t.Errorf("observability.md does not give the GC share as BEAMGCPressure computes it:\n%s", share)
		}
		return
	}
	t.Fatal("no BEAMGCPressure rule")
}
