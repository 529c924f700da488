package clickhouse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDeploymentOf(t *testing.T) {
	for pod, want := range map[string]string{
		"shop-7d4b9c8f6d-x2x9k":      "shop",
		"order-sink-5f6c7b8d9-abcde": "order-sink",
		"ledger-0":                   "ledger",
		"ledger-db-12":               "ledger-db",
		"myhost":                     "",
		"":                           "",
	} {
		if got := deploymentOf(pod); got != want {
			t.Errorf("%q: %q, want %q", pod, got, want)
		}
	}
}

func TestFlagsConfig(t *testing.T) {
	os.Unsetenv(PasswordEnv)
	dir := t.TempDir()
	write := func(name, text string, perm os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), perm); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, perm)
		return p
	}
	good := func() Flags {
		return Flags{url: "http://127.0.0.1:8123", database: "default", table: "beam_top_processes", user: "default",
			interval: 5 * time.Second, timeout: 10 * time.Second, bufferRows: 100}
	}
	if c, err := good().Config(); err != nil || c.URL.Host != "127.0.0.1:8123" || c.Password != "" || c.PasswordSource != "none" {
		t.Fatalf("%+v %v", c, err)
	}
	secret := write("password", "s3cret\n", 0o600)
	exposed := write("exposed", "s3cret\n", 0o644)
	f := good()
	f.passwordFile = secret
	if c, err := f.Config(); err != nil || c.Password != "s3cret" || c.PasswordExposed {
		t.Errorf("password file: %+v %v", c, err)
	}
	f.passwordFile = exposed
	if c, err := f.Config(); err != nil || !c.PasswordExposed {
		t.Errorf("exposed password file: %v %v", c.PasswordExposed, err)
	}
	t.Setenv(PasswordEnv, "from-env")
	if c, err := f.Config(); err != nil || c.Password != "from-env" || c.PasswordSource != "environment" {
		t.Errorf("environment: %+v %v", c, err)
	}
	os.Unsetenv(PasswordEnv)

	for _, tc := range []struct {
		name   string
		change func(*Flags)
		says   string
	}{
		{"not http", func(f *Flags) { f.url = "tcp://host:9000" }, "http:// or https://"},
		{"no host", func(f *Flags) { f.url = "http:///x" }, "has no host"},
		{"password in the URL", func(f *Flags) { f.url = "http://u:p@host:8123" }, "--sink.clickhouse.password-file"},
		{"password in the query", func(f *Flags) { f.url = "http://host:8123/?password=p" }, `sets "password"`},
		{"odd table", func(f *Flags) { f.table = "beam-top" }, "--sink.clickhouse.table"},
		{"odd database", func(f *Flags) { f.database = "1db" }, "--sink.clickhouse.database"},
		{"interval too short", func(f *Flags) { f.interval = 500 * time.Millisecond }, "at least 1s"},
		{"no timeout", func(f *Flags) { f.timeout = 0 }, "--sink.clickhouse.timeout"},
		{"no buffer", func(f *Flags) { f.bufferRows = 0 }, "--sink.clickhouse.buffer-rows"},
		{"missing password file", func(f *Flags) { f.passwordFile = filepath.Join(dir, "nope") }, "no such file"},
		{"empty password file", func(f *Flags) { f.passwordFile = write("empty", "\n", 0o600) }, "is empty"},
		{"password file of two lines", func(f *Flags) { f.passwordFile = write("two", "a\nb\n", 0o600) }, "more than one line"},
	} {
		f := good()
		tc.change(&f)
		_, err := f.Config()
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.says)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
	}
}
