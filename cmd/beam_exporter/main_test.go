// End-to-end tests of the built binary: flag errors, and a live scrape linted by promtool.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/collector"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

var binary string

// buildFlags build the binary under test with the race detector; the fleet
// benchmark measures a normal build.
var buildFlags = []string{"-race"}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "beam_exporter_e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "beam_exporter")
	args := append(append([]string{"build"}, buildFlags...), "-o", binary, ".")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the exporter: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	clickhouseServer.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestBadConfigurationExits2(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, perm os.FileMode) string { return testkit.WriteFile(t, dir, name, text, perm) }
	empty := write("empty", "", 0o600)
	blank := write("blank", " \n\n", 0o600)
	cookie := write("cookie", "c00kie\n", 0o600)
	twoLines := write("two-lines", "c00kie\nc00kie\n", 0o600)
	missing := filepath.Join(dir, "nope")
	directory := filepath.Join(dir, "dir-not-file")
	if err := os.Mkdir(directory, 0o700); err != nil {
		t.Fatal(err)
	}
	badYAML := write("web-bad-yaml.yml", "tls_server_config: [this is not a map\n", 0o600)
	wrongKeys := write("web-wrong-keys.yml", "tls_config:\n  cert_file: x.pem\n", 0o600)
	noKey := write("web-no-key.yml", "tls_server_config:\n  cert_file: "+filepath.Join(dir, "x.pem")+"\n", 0o600)
	plainPassword := write("web-plain-password.yml", "basic_auth_users:\n  alice: not-a-bcrypt-hash\n", 0o600)
	fleetConfig := write("fleet.yml", "auth_modules:\n  prod: {cookie_file: "+cookie+"}\n", 0o600)
	unknownCollector := write("fleet-unknown-collector.yml", "auth_modules:\n  prod: {cookie_file: "+cookie+", collectors: [memory, proceses]}\n", 0o600)
	badTarget := write("fleet-bad-target.yml", "auth_modules:\n  prod: {cookie_file: "+cookie+", targets: ['app@10.0.*', 'app-*']}\n", 0o600)
	node := "--erlang.node=a@b"
	withCookie := "--erlang.cookie-file=" + cookie

	for _, tc := range []struct {
		name string
		args []string
		want []string // every one appears in the output
	}{
		{"unknown flag", []string{node, "--no-such-flag"}, []string{"unknown long flag", "--no-such-flag"}},
		// kingpin reports a value it cannot parse without naming its flag.
		{"flag value of the wrong type", []string{node, withCookie, "--erlang.port=many"}, []string{`"many"`, "invalid syntax"}},
		{"neither a node nor a fleet", []string{withCookie}, []string{"--erlang.node", "--config.file"}},
		{"missing config file", []string{"--config.file=" + missing}, []string{"--config.file", missing}},
		{"config file without auth modules", []string{"--config.file=" + empty}, []string{"--config.file", empty, "no auth_modules"}},
		{"auth module with an unknown collector", []string{"--config.file=" + unknownCollector}, []string{`auth module "prod"`, `no collector named "proceses"`}},
		{"auth module with a bad target pattern", []string{"--config.file=" + badTarget}, []string{badTarget, `auth module "prod"`, `pattern "app-*"`, "no @"}},
		{"fleet without room for a target", []string{"--config.file=" + fleetConfig, "--fleet.max-targets=0"}, []string{"target limit"}},
		{"node without @", []string{"--erlang.node=no-host", withCookie}, []string{"--erlang.node", `"no-host"`, "has no @host part"}},
		{"node with an empty name", []string{"--erlang.node=@host", withCookie}, []string{"--erlang.node", `"@host"`, "non-empty"}},
		{"node with an empty host", []string{"--erlang.node=name@", withCookie}, []string{"--erlang.node", `"name@"`, "non-empty"}},
		{"node with two @", []string{"--erlang.node=a@b@c", withCookie}, []string{"--erlang.node", `"a@b@c"`, "more than one @"}},
		{"node with a space in the name", []string{"--erlang.node=a b@host", withCookie}, []string{"--erlang.node", `' '`, "not allowed"}},
		{"node with a slash in the name", []string{"--erlang.node=a/b@host", withCookie}, []string{"--erlang.node", `'/'`, "not allowed"}},
		{"node with a space in the host", []string{"--erlang.node=a@my host", withCookie}, []string{"--erlang.node", `' '`, "not allowed in the host part"}},
		{"node name too long", []string{"--erlang.node=" + strings.Repeat("a", 256) + "@host", withCookie}, []string{"--erlang.node", "longer than 255"}},
		{"bad local name", []string{node, withCookie, "--erlang.local-name=exporter"}, []string{"--erlang.local-name", "has no @host part"}},
		{"net tick time below a second", []string{node, withCookie, "--erlang.net-ticktime=3ns"}, []string{"--erlang.net-ticktime", "3ns", "whole number of seconds"}},
		{"net tick time of part seconds", []string{node, withCookie, "--erlang.net-ticktime=1500ms"}, []string{"--erlang.net-ticktime", "1.5s", "whole number of seconds"}},
		{"net tick time of zero", []string{node, withCookie, "--erlang.net-ticktime=0s"}, []string{"--erlang.net-ticktime must be at least 1s"}},
		{"negative net tick time", []string{node, withCookie, "--erlang.net-ticktime=-5s"}, []string{"--erlang.net-ticktime", "-5s"}},
		{"missing cookie file", []string{node, "--erlang.cookie-file=" + missing}, []string{missing, "no such file"}},
		{"empty cookie file", []string{node, "--erlang.cookie-file=" + empty}, []string{empty, "is empty"}},
		{"blank cookie file", []string{node, "--erlang.cookie-file=" + blank}, []string{blank, "is empty"}},
		{"cookie file of two lines", []string{node, "--erlang.cookie-file=" + twoLines}, []string{twoLines, "more than one line"}},
		{"cookie file is a directory", []string{node, "--erlang.cookie-file=" + directory}, []string{directory, "not a regular file"}},
		{"missing web config", []string{node, withCookie, "--web.config.file=" + missing}, []string{"--web.config.file", missing}},
		{"web config of invalid YAML", []string{node, withCookie, "--web.config.file=" + badYAML}, []string{"--web.config.file", badYAML}},
		{"web config with unknown keys", []string{node, withCookie, "--web.config.file=" + wrongKeys}, []string{"--web.config.file", wrongKeys, "tls_config"}},
		{"web config with a certificate and no key", []string{node, withCookie, "--web.config.file=" + noKey}, []string{"--web.config.file", noKey, "key"}},
		{"web config with a password that is not a hash", []string{node, withCookie, "--web.config.file=" + plainPassword}, []string{"--web.config.file", plainPassword}},
		{"bad tiers", []string{node, withCookie, "--collector.tier.slow=1s"}, []string{"slow tier"}},
		{"top-n out of range", []string{node, withCookie, "--collector.processes.top-n=0"}, []string{"--collector.processes.top-n"}},
		{"group top-k out of range", []string{node, withCookie, "--collector.process_groups.top-k=1001"}, []string{"--collector.process_groups.top-k must be within 1-1000, got 1001"}},
		{"TLS files without --erlang.tls", []string{node, withCookie, "--erlang.tls.ca-file=" + cookie}, []string{"--erlang.tls"}},
		{"TLS CA file missing", []string{node, withCookie, "--erlang.tls", "--erlang.tls.ca-file=" + missing}, []string{"--erlang.tls", missing}},
		{"TLS CA file without a certificate", []string{node, withCookie, "--erlang.tls", "--erlang.tls.ca-file=" + empty}, []string{"--erlang.tls", empty, "no PEM certificate"}},
		{"TLS certificate without its key", []string{node, withCookie, "--erlang.tls", "--erlang.tls.cert-file=" + cookie}, []string{"--erlang.tls", "give both files"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectExit2(t, tc.args, tc.want...)
		})
	}

	t.Run("unreadable cookie file", func(t *testing.T) {
		// Permission bits do not stop root, so as root the exporter runs as
		// nobody, who must be able to reach the binary and the file's directory.
		var creds *syscall.Credential
		if os.Geteuid() == 0 {
			creds = &syscall.Credential{Uid: 65534, Gid: 65534}
		}
		open, err := os.MkdirTemp("", "beam_exporter_cookie")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(open) })
		for _, d := range []string{open, filepath.Dir(binary)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		unreadable := filepath.Join(open, "unreadable")
		if err := os.WriteFile(unreadable, []byte("c00kie\n"), 0o000); err != nil {
			t.Fatal(err)
		}
		expectExit2As(t, creds, []string{node, "--erlang.cookie-file=" + unreadable}, unreadable, "permission denied")
	})
}

// expectExit2 runs the binary with args and wants exit status 2, an output
// that says each of want, and no cookie in it.
func expectExit2(t *testing.T, args []string, want ...string) {
	t.Helper()
	expectExit2As(t, nil, args, want...)
}

// expectExit2As is expectExit2 with the binary running as creds' user.
func expectExit2As(t *testing.T, creds *syscall.Credential, args []string, want ...string) {
	t.Helper()
	// An exporter that accepted its configuration would serve forever.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = withoutCookieEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: creds}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2; output:\n%s", err, out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("output does not say %q:\n%s", w, out)
		}
	}
	if strings.Contains(string(out), "c00kie") {
		t.Errorf("the output shows the cookie:\n%s", out)
	}
}

func withoutCookieEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "BEAM_EXPORTER_ERLANG_COOKIE=") {
			env = append(env, e)
		}
	}
	return env
}

// TestEndToEndScrape runs the binary against a real node of each release, checks
// the scrape with promtool, and looks for the cookie everywhere it must not be.
func TestEndToEndScrape(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: apt-get install prometheus")
	}
	for _, otp := range erltest.Releases() {
		t.Run("OTP"+otp, func(t *testing.T) {
			t.Parallel()
			node := erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("e2e")})
			// The defaults, and process_groups (opt-in), whose families promtool checks too.
			addr, cmd, logs := startExporter(t, node.Cookie, "--erlang.node="+node.Name, "--log.level=debug", "--collector.process_groups",
				"--erlang.local-name="+erltest.UniqueName("beam_exporter")+"@"+strings.SplitN(node.Name, "@", 2)[1])
			args, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
			body := scrapeUntilUp(t, addr, logs)
			lint := exec.Command(promtool, "check", "metrics")
			lint.Stdin = bytes.NewReader(body)
			if out, err := lint.CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("promtool check metrics: %v\n%s", err, out)
			}
			for what, text := range map[string][]byte{"metrics": body, "logs": []byte(logs.String()), "arguments": args} {
				if bytes.Contains(text, []byte(node.Cookie)) {
					t.Errorf("the cookie appears in the exporter's %s", what)
				}
			}
			if !bytes.Contains(body, []byte("\nbeam_process_group_processes{group=\"other\"}")) {
				t.Errorf("no process groups in the scrape:\n%s", body)
			}
			if status, page := testkit.Get(t, "http://"+addr+"/"); status != http.StatusOK || !strings.Contains(page, `href="/top"`) {
				t.Errorf("landing page (%d) without a link to /top:\n%s", status, page)
			}
			if status, page := testkit.Get(t, "http://"+addr+"/top"); status != http.StatusOK || !strings.Contains(page, "Top processes of "+node.Name) ||
				!strings.Contains(page, "<h2>Process groups</h2>") {
				t.Errorf("/top: %d\n%.500s", status, page)
			}
			// /top's groups come from the same scan as its ranking: one slice
			// here, so they sum to every process the scan read.
			status, topJSON := testkit.Get(t, "http://"+addr+"/top", "Accept", "application/json")
			var snap collector.TopSnapshot
			if err := json.Unmarshal([]byte(topJSON), &snap); status != http.StatusOK || err != nil {
				t.Fatalf("/top as JSON: %d %v\n%.500s", status, err, topJSON)
			}
			var processes float64
			for _, g := range snap.Groups {
				processes += g.Processes
			}
			if len(snap.Groups) < 2 || snap.Groups[len(snap.Groups)-1].Group != "other" || processes != float64(snap.Processes) {
				t.Errorf("/top's groups sum to %.0f processes, the scan read %d: %+v", processes, snap.Processes, snap.Groups)
			}
		})
	}
}

// startExporter runs the binary with args and the cookie in its environment,
// listening on a free port, until the test ends.
func startExporter(t *testing.T, cookie string, args ...string) (addr string, cmd *exec.Cmd, logs *testkit.LockedBuffer) {
	t.Helper()
	addr, logs = testkit.FreeAddr(t), &testkit.LockedBuffer{}
	cmd = exec.Command(binary, append(args, "--web.listen-address="+addr)...)
	cmd.Env = append(withoutCookieEnv(), "BEAM_EXPORTER_ERLANG_COOKIE="+cookie)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return addr, cmd, logs
}

// scrapeUntilUp scrapes addr until beam_up is 1, for at most 30 s, and
// returns that scrape.
func scrapeUntilUp(t *testing.T, addr string, logs *testkit.LockedBuffer) []byte {
	t.Helper()
	var body []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(body, []byte("\nbeam_up 1")) {
				return body
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no beam_up 1 within 30s; last body:\n%s\nlogs:\n%s", body, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestEndToEndTLSDistribution runs the binary with the --erlang.tls flags
// against a node that accepts TLS distribution only.
func TestEndToEndTLSDistribution(t *testing.T) {
	args, ca := erltest.TLSDistArgs(t, erltest.HostOTP)
	node := erltest.Start(t, erltest.Options{Name: erltest.UniqueName("e2e_tls"), Args: args})
	cert, key := ca.Issue(t, "exporter", "exporter")
	addr, _, logs := startExporter(t, node.Cookie, "--erlang.node="+node.Name, "--erlang.tls",
		"--erlang.tls.ca-file="+ca.CertFile, "--erlang.tls.cert-file="+cert, "--erlang.tls.key-file="+key)
	body := scrapeUntilUp(t, addr, logs)
	if !bytes.Contains(body, []byte(`beam_scrape_collector_success{collector="memory"} 1`)) {
		t.Errorf("the memory collector failed over TLS distribution:\n%s", body)
	}
}

// A config written before auth modules had targets starts, says at once
// that it now refuses every node, and does: /probe answers 403 and counts
// the refusal on /metrics. A module that allows every node is warned of.
func TestEndToEndFleetTargets(t *testing.T) {
	dir := t.TempDir()
	cookie := testkit.WriteFile(t, dir, "cookie", "c00kie\n", 0o600)
	config := testkit.WriteFile(t, dir, "fleet.yml", "auth_modules:\n  old: {cookie_file: "+cookie+"}\n  open: {cookie_file: "+cookie+", targets: ['*']}\n", 0o600)
	addr, _, logs := startExporter(t, "unused", "--config.file="+config)
	var status int
	var body string
	testkit.WaitFor(t, "the exporter to serve", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/probe?auth_module=old&target=app%40127.0.0.1")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		status, body = resp.StatusCode, string(b)
		return true
	})
	if status != http.StatusForbidden || !strings.Contains(body, `not among the targets of auth module "old"`) {
		t.Errorf("/probe with a module without targets: %d %q, want 403", status, body)
	}
	if _, metrics := testkit.Get(t, "http://"+addr+"/metrics"); !strings.Contains(metrics, `beam_exporter_fleet_requests_refused_total{reason="not_allowed"} 1`) {
		t.Errorf("the refusal is not counted on /metrics:\n%s", metrics)
	}
	for _, want := range [][]string{
		{"level=warn", "auth_module=old", "names no targets"},
		{"level=warn", "auth_module=open", "allows every target"},
	} {
		if len(logs.Lines(want...)) != 1 {
			t.Errorf("the start-up log lacks one line with %q:\n%s", want, logs)
		}
	}
}
