package erlnode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

func TestLoadCookie(t *testing.T) {
	t.Setenv(CookieEnv, "")
	os.Unsetenv(CookieEnv)
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		return testkit.WriteFile(t, dir, name, content, mode)
	}
	private := write("private", "SECRETCOOKIE\n", 0o400)
	c, err := LoadCookie(private)
	if err != nil || c.Value != "SECRETCOOKIE" || c.Exposed {
		t.Fatalf("private file: %+v, %v", c, err)
	}
	if c, _ := LoadCookie(write("shared", "SECRETCOOKIE", 0o644)); !c.Exposed {
		t.Error("a world-readable cookie file is not flagged")
	}
	for name, path := range map[string]string{
		"empty":     write("empty", " \n", 0o600),
		"two lines": write("two", "a\nb\n", 0o600),
		"too long":  write("long", strings.Repeat("x", 300), 0o600),
		"missing":   filepath.Join(dir, "missing"),
		"directory": dir,
	} {
		_, err := LoadCookie(path)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "SECRETCOOKIE") {
			t.Errorf("%s: the error shows the cookie: %v", name, err)
		}
	}
	t.Setenv(CookieEnv, " fromenv ")
	if c, err := LoadCookie(filepath.Join(dir, "missing")); err != nil || c.Value != "fromenv" || c.Source != "environment" {
		t.Errorf("environment: %+v, %v", c, err)
	}
	t.Setenv(CookieEnv, "")
	if _, err := LoadCookie(private); err == nil {
		t.Error("an empty environment variable was accepted")
	}
}
