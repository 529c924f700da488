package config

import (
	"strings"
	"testing"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

func TestTargetPatternMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		match   []string
		refuse  []string
	}{
		{pattern: "*", match: []string{"app@host1", "x@10.0.0.1"}},
		{pattern: "app@host1", match: []string{"app@host1"}, refuse: []string{"app@host2", "App@host1", "app@host1.example.com", "xapp@host1", "app@host"}},
		{pattern: "app-*@10.0.*", match: []string{"app-1@10.0.3.4", "app-@10.0.", "app-web-2@10.0.0.1"},
			refuse: []string{"app@10.0.3.4", "app-1@10.1.3.4", "app-1@110.0.3.4", "app-1@10.0.3.4@evil"}},
		{pattern: "*@db-*.prod.example.com", match: []string{"rabbit@db-1.prod.example.com"},
			refuse: []string{"rabbit@db-1.prodXexample.com", "rabbit@db-1.prod.example.com.evil.net"}},
		// A dot is a dot, not any character.
		{pattern: "a@10.0.0.1", refuse: []string{"a@10x0x0x1"}},
		// `*` never crosses the @.
		{pattern: "a*@h", refuse: []string{"a@x@h"}},
	} {
		p, err := parseTargetPattern(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		for _, node := range tc.match {
			if !p.matches(node) {
				t.Errorf("%q does not match %q", tc.pattern, node)
			}
		}
		for _, node := range tc.refuse {
			if p.matches(node) {
				t.Errorf("%q matches %q", tc.pattern, node)
			}
		}
	}
}

func TestTargetPatternBad(t *testing.T) {
	for pattern, want := range map[string]string{
		"":              "empty pattern",
		"app":           "no @",
		"app@h@h":       "more than one @",
		"@host":         "empty name",
		"app@":          "empty name or host",
		"a b@host":      "name part",
		"app@ho/st":     "host part",
		"app?@host":     "name part",
		"app@[host]":    "host part",
		"app@host\n":    "host part",
		"app.web@host1": "name part",
	} {
		if _, err := parseTargetPattern(pattern); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one saying %q", pattern, err, want)
		}
	}
}

func TestAuthModuleTargets(t *testing.T) {
	dir := t.TempDir()
	cookie := testkit.WriteFile(t, dir, "c.cookie", "cookie-c\n", 0o600)
	path := testkit.WriteFile(t, dir, "targets.yml", `auth_modules:
  none: {cookie_file: `+cookie+`}
  empty: {cookie_file: `+cookie+`, targets: []}
  prod: {cookie_file: `+cookie+`, targets: ['app-*@10.0.*', 'rabbit@mq1']}
  all: {cookie_file: `+cookie+`, targets: ['*']}
  all2: {cookie_file: `+cookie+`, targets: ['*@*']}
`, 0o600)
	modules, err := LoadAuthModules(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"none", "empty"} {
		m := modules[name].Targets
		if !m.None() || m.Everything() || m.Allows("app-1@10.0.0.1") || m.Allows("rabbit@mq1") {
			t.Errorf("module %s without targets: none %v, everything %v; it must refuse every node", name, m.None(), m.Everything())
		}
	}
	prod := modules["prod"].Targets
	if !prod.Allows("app-1@10.0.0.1") || !prod.Allows("rabbit@mq1") || prod.Allows("rabbit@mq2") || prod.None() || prod.Everything() {
		t.Errorf("module prod (%v) decides wrongly", prod)
	}
	if got := prod.String(); got != "app-*@10.0.*,rabbit@mq1" {
		t.Errorf("prod's targets as written: %q", got)
	}
	for _, name := range []string{"all", "all2"} {
		if m := modules[name].Targets; !m.Everything() || !m.Allows("anything@anywhere") {
			t.Errorf("module %s does not admit every node", name)
		}
	}

	bad := testkit.WriteFile(t, dir, "bad.yml", "auth_modules:\n  prod: {cookie_file: "+cookie+", targets: ['app']}\n", 0o600)
	_, err = LoadAuthModules(bad)
	for _, want := range []string{bad, `auth module "prod"`, `pattern "app"`, "no @"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a bad pattern: error %v, want one naming %s", err, want)
		}
	}
	notList := testkit.WriteFile(t, dir, "notlist.yml", "auth_modules:\n  prod: {cookie_file: "+cookie+", targets: 'app@h'}\n", 0o600)
	if _, err := LoadAuthModules(notList); err == nil || !strings.Contains(err.Error(), "yaml") {
		t.Errorf("targets as a string: error %v, want a YAML error", err)
	}
}
