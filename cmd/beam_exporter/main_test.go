// End-to-end tests of the built binary: flag errors, and a live scrape linted by promtool.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "beam_exporter_e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "beam_exporter")
	if out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the exporter: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestBadConfigurationExits2(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	cookie := filepath.Join(dir, "cookie")
	os.WriteFile(cookie, []byte("c00kie\n"), 0o600)
	unreadable := filepath.Join(dir, "dir-not-file")
	os.Mkdir(unreadable, 0o700)
	badWeb := filepath.Join(dir, "web.yml")
	os.WriteFile(badWeb, []byte("tls_server_config: [this is not a map\n"), 0o600)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--erlang.node=a@b", "--no-such-flag"}, "unknown long flag"},
		{"missing node", []string{"--erlang.cookie-file=" + cookie}, "'--erlang.node' not provided"},
		{"unparsable node", []string{"--erlang.node=no-host", "--erlang.cookie-file=" + cookie}, "has no @host part"},
		{"bad characters", []string{"--erlang.node=a b@host", "--erlang.cookie-file=" + cookie}, "not allowed"},
		{"missing cookie file", []string{"--erlang.node=a@b", "--erlang.cookie-file=" + filepath.Join(dir, "nope")}, "no such file"},
		{"empty cookie file", []string{"--erlang.node=a@b", "--erlang.cookie-file=" + empty}, "is empty"},
		{"cookie file is a directory", []string{"--erlang.node=a@b", "--erlang.cookie-file=" + unreadable}, "not a regular file"},
		{"bad web config", []string{"--erlang.node=a@b", "--erlang.cookie-file=" + cookie, "--web.config.file=" + badWeb}, "--web.config.file"},
		{"bad tiers", []string{"--erlang.node=a@b", "--erlang.cookie-file=" + cookie, "--collector.tier.slow=1s"}, "slow tier"},
		{"top-n out of range", []string{"--erlang.node=a@b", "--erlang.cookie-file=" + cookie, "--collector.processes.top-n=0"}, "top-n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, tc.args...)
			cmd.Env = withoutCookieEnv()
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output does not say %q:\n%s", tc.want, out)
			}
			if strings.Contains(string(out), "c00kie") {
				t.Errorf("the output shows the cookie:\n%s", out)
			}
		})
	}
}

// lockedBuffer collects the exporter's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
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
			addr := freePort(t)
			var logs lockedBuffer
			cmd := exec.Command(binary, "--erlang.node="+node.Name, "--web.listen-address="+addr, "--log.level=debug",
				"--erlang.local-name="+erltest.UniqueName("beam_exporter")+"@"+strings.SplitN(node.Name, "@", 2)[1])
			cmd.Env = append(withoutCookieEnv(), "BEAM_EXPORTER_ERLANG_COOKIE="+node.Cookie)
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			args, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

			var body []byte
			deadline := time.Now().Add(30 * time.Second)
			for {
				resp, err := http.Get("http://" + addr + "/metrics")
				if err == nil {
					body, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
					if bytes.Contains(body, []byte("\nbeam_up 1")) {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no beam_up 1 within 30s; last body:\n%s\nlogs:\n%s", body, logs.String())
				}
				time.Sleep(200 * time.Millisecond)
			}
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
			landing, err := http.Get("http://" + addr + "/")
			if err != nil || landing.StatusCode != http.StatusOK {
				t.Errorf("landing page: %v %v", err, landing)
			}
		})
	}
}
