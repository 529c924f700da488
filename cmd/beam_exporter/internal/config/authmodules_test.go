package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

func TestLoadAuthModules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, perm os.FileMode) string { return testkit.WriteFile(t, dir, name, text, perm) }
	cookieA := write("a.cookie", "cookie-a\n", 0o600)
	ca := erltest.NewCA(t, dir)
	cert, key := ca.Issue(t, "exporter", "exporter")
	t.Setenv("TEST_COOKIE_B", "cookie-b")

	good := write("good.yml", `---
auth_modules:
  a: {cookie_file: `+cookieA+`}
  b: {cookie_env: TEST_COOKIE_B, collectors: [processes, memory]}
  c:
    cookie: " cookie-c "
    tls: {ca_file: `+ca.CertFile+`, cert_file: `+cert+`, key_file: `+key+`}
---
`, 0o600)
	modules, err := LoadAuthModules(good)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "cookie-a", "b": "cookie-b", "c": "cookie-c"} {
		if modules[name].Cookie != want || modules[name].Name != name {
			t.Errorf("module %s = %+v", name, modules[name])
		}
	}
	if got := modules["b"].Collectors; strings.Join(got, " ") != "memory processes" || modules["a"].Collectors != nil {
		t.Errorf("collectors: a %q (want nil: the flags decide), b %q", modules["a"].Collectors, got)
	}
	if modules["a"].TLS != nil || modules["c"].TLS == nil || len(modules["c"].TLS.Certificates) != 1 {
		t.Errorf("TLS settings: a %v, c %v", modules["a"].TLS, modules["c"].TLS)
	}

	for _, tc := range []struct {
		name, text string
		perm       os.FileMode
		want       string
	}{
		{"inline cookie in a readable file", "auth_modules:\n  x: {cookie: secret-x}\n", 0o644, "chmod 600"},
		{"two cookie sources", "auth_modules:\n  x: {cookie_file: " + cookieA + ", cookie_env: TEST_COOKIE_B}\n", 0o600, "exactly one"},
		{"no cookie source", "auth_modules:\n  x: {}\n", 0o600, "exactly one"},
		{"blank inline cookie", "auth_modules:\n  x: {cookie: \"   \"}\n", 0o600, "exactly one"},
		{"a second document", "auth_modules:\n  x: {cookie_file: " + cookieA + "}\n---\nauth_modules:\n  y: {cookie_file: " + cookieA + "}\n", 0o600, "more than one YAML document"},
		{"a second document of bad YAML", "auth_modules:\n  x: {cookie_file: " + cookieA + "}\n---\n[\n", 0o600, "more than one YAML document"},
		{"missing cookie file", "auth_modules:\n  x: {cookie_file: " + dir + "/nope}\n", 0o600, "no such file"},
		{"unset variable", "auth_modules:\n  x: {cookie_env: TEST_COOKIE_UNSET}\n", 0o600, "TEST_COOKIE_UNSET"},
		{"unknown key", "auth_modules:\n  x: {cookie_fil: " + cookieA + "}\n", 0o600, "cookie_fil"},
		{"no modules", "auth_modules: {}\n", 0o600, "no auth_modules"},
		{"not YAML", "auth_modules: [\n", 0o600, "yaml"},
		{"empty collectors", "auth_modules:\n  x: {cookie_file: " + cookieA + ", collectors: []}\n", 0o600, "collectors is empty"},
		{"collector twice", "auth_modules:\n  x: {cookie_file: " + cookieA + ", collectors: [ets, ets]}\n", 0o600, `"ets" twice`},
		{"collectors not a list", "auth_modules:\n  x: {cookie_file: " + cookieA + ", collectors: ets}\n", 0o600, "yaml"},
		{"bad TLS", "auth_modules:\n  x: {cookie_file: " + cookieA + ", tls: {cert_file: " + cert + "}}\n", 0o600, "give both files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(strings.ReplaceAll(tc.name, " ", "-")+".yml", tc.text, tc.perm)
			_, err := LoadAuthModules(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error = %v, want one naming %s and saying %q", err, path, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret-x") {
				t.Errorf("the error shows the cookie: %v", err)
			}
		})
	}
	if _, err := LoadAuthModules(filepath.Join(dir, "missing.yml")); err == nil {
		t.Error("a missing config file loaded")
	}
}
