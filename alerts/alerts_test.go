package alerts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// requiredAlerts lists every alert the rule file must carry, with its levels.
var requiredAlerts = map[string][]string{
	"BEAMDown":                     {"critical"},
	"BEAMSchedulerSaturation":      {"warning", "critical"},
	"BEAMRunQueueBacklog":          {"warning"},
	"BEAMProcessLimit":             {"warning", "critical"},
	"BEAMPortLimit":                {"warning", "critical"},
	"BEAMAtomLimit":                {"warning", "critical"},
	"BEAMETSTableLimit":            {"warning", "critical"},
	"BEAMMailboxGrowing":           {"warning"},
	"BEAMMemoryGrowth":             {"warning"},
	"BEAMBinaryMemoryGrowth":       {"warning"},
	"BEAMGCPressure":               {"warning"},
	"BEAMExporterCollectorFailing": {"warning"},
}

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
	for _, r := range cfg.InhibitRules {
		if len(r.SourceMatchers) == 1 && r.SourceMatchers[0] == `alertname="BEAMDown"` {
			eq := append([]string(nil), r.Equal...)
			sort.Strings(eq)
			if strings.Join(eq, ",") != "instance,job" {
				t.Errorf("BEAMDown inhibition must match on instance and job, got %v", r.Equal)
			}
			return
		}
	}
	t.Fatal(`no inhibit rule with source_matchers [alertname="BEAMDown"]`)
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
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]string{}
	for _, r := range rules {
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
		for _, want := range []string{"{{ $value", "{{ $labels.instance }}"} {
			if !strings.Contains(a.Description, want) {
				t.Errorf("%s: description does not quote %s", r.Alert, want)
			}
		}
		wantURL := runbookBase + "#" + Anchor(r.Alert)
		if a.RunbookURL != wantURL {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, a.RunbookURL, wantURL)
		}
	}
	for name, sevs := range requiredAlerts {
		if strings.Join(seen[name], ",") != strings.Join(sevs, ",") {
			t.Errorf("%s: levels %v, want %v", name, seen[name], sevs)
		}
	}
	for name := range seen {
		if _, ok := requiredAlerts[name]; !ok {
			t.Errorf("%s: not in requiredAlerts; add it there and give it unit tests", name)
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
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("tests/*.yml")
	fires := map[string]bool{}
	silent := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var pt promtoolTest
		if err := yaml.Unmarshal(data, &pt); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(pt.RuleFiles) != 1 || pt.RuleFiles[0] != "../"+RulesFile {
			t.Errorf("%s: rule_files must be [../%s], got %v", f, RulesFile, pt.RuleFiles)
		}
		for _, tc := range pt.Tests {
			for _, at := range tc.AlertRuleTest {
				sevs := map[string]bool{}
				for _, ea := range at.ExpAlerts {
					sev := ea.ExpLabels["severity"]
					sevs[sev] = true
					for _, l := range []string{"severity", "instance", "job"} {
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
}

func TestThresholdsRejected(t *testing.T) {
	base := string(ThresholdsYAML())
	cases := map[string]struct{ from, to, want string }{
		"unknown key":         {"node_down:", "node_dwn:", "node_dwn"},
		"warning >= critical": {"    above: 0.95\n", "    above: 0.5\n", "must be below"},
		"ratio above 1":       {"    above: 0.10\n", "    above: 10\n", "at most 1"},
		"bad duration":        {"  window: 5m\n", "  window: five\n", "invalid duration"},
		"missing level":       {"  critical:\n    above: 0.75\n    for: 5m\n", "", "atom_limit.critical: missing"},
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
	v, err := th.Lookup("scheduler_saturation.critical.above")
	if err != nil || v != *th.SchedulerSaturation.Critical.Above {
		t.Errorf("Lookup = %v, %v", v, err)
	}
	for _, bad := range []string{"node_down.critical.above", "nope.warning.above", "run_queue.window", "run_queue.critical.above"} {
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
	rules, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		heading := regexp.MustCompile(`(?m)^#{2,4} ` + regexp.QuoteMeta(r.Alert) + `\s*$`)
		anchor := regexp.MustCompile(`id="` + regexp.QuoteMeta(Anchor(r.Alert)) + `"`)
		if !heading.Match(doc) && !anchor.Match(doc) {
			t.Errorf("observability.md has no section for %s (heading \"### %s\" or anchor #%s)", r.Alert, r.Alert, Anchor(r.Alert))
		}
	}
}
