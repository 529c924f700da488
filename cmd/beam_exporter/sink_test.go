// End-to-end tests of the ClickHouse sink in the built binary, against Debian's clickhouse-server.

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/sink/clickhouse"
	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/sink/clickhouse/chtest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

// The package's one clickhouse-server; TestMain closes it.
var clickhouseServer chtest.Shared

func startClickHouse(t *testing.T) *chtest.Server { return clickhouseServer.Get(t) }

// The sink's configuration is checked at start: what no waiting mends ends
// the exporter with status 2 and the reason; a server that does not answer
// is a counted failure at run time. The password shows nowhere.
func TestSinkConfiguration(t *testing.T) {
	ch := startClickHouse(t)
	cookie := testkit.WriteFile(t, t.TempDir(), "cookie", "c00kie\n", 0o600)
	notClickHouse := httptest.NewServer(http.NotFoundHandler())
	defer notClickHouse.Close()
	if _, err := ch.Query("CREATE TABLE IF NOT EXISTS default.misfit (timestamp Date, pid UInt32) ENGINE = MergeTree(timestamp, (pid), 8192)"); err != nil {
		t.Fatal(err)
	}
	base := []string{"--erlang.node=a@b", "--erlang.cookie-file=" + cookie}
	sink := func(args ...string) []string { return append(append([]string{}, base...), args...) }
	for _, tc := range []struct {
		name     string
		args     []string
		password string
		want     []string
	}{
		{"a password in the URL", sink("--sink.clickhouse.url=http://u:s3cret@" + ch.Host()), "",
			[]string{"--sink.clickhouse.url", "--sink.clickhouse.password-file"}},
		{"an interval under a second", sink("--sink.clickhouse.url="+ch.URL, "--sink.clickhouse.interval=100ms"), "",
			[]string{"--sink.clickhouse.interval", "at least 1s"}},
		{"a missing password file", sink("--sink.clickhouse.url="+ch.URL, "--sink.clickhouse.password-file=/nonexistent"), "",
			[]string{"--sink.clickhouse.password-file", "/nonexistent"}},
		{"not ClickHouse", sink("--sink.clickhouse.url=" + notClickHouse.URL), "",
			[]string{"--sink.clickhouse.url", "does not answer as ClickHouse's HTTP interface does"}},
		{"a wrong password", sink("--sink.clickhouse.url="+ch.URL, "--sink.clickhouse.user=sink"), "s3cret-but-wrong",
			[]string{"Wrong password for user sink"}},
		{"a misfit table", sink("--sink.clickhouse.url="+ch.URL, "--sink.clickhouse.table=misfit"), "",
			[]string{"table default.misfit does not fit the sink", "column timestamp is Date", "column memory is missing"}},
		{"a missing table", sink("--sink.clickhouse.url="+ch.URL, "--sink.clickhouse.table=missing"), "",
			[]string{"table default.missing does not exist", "--sink.clickhouse.create-table"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, tc.args...)
			cmd.Env = withoutCookieEnv()
			if tc.password != "" {
				cmd.Env = append(cmd.Env, clickhouse.PasswordEnv+"="+tc.password)
			}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; output:\n%s", err, out)
			}
			for _, w := range tc.want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if tc.password != "" && bytes.Contains(out, []byte(tc.password)) || bytes.Contains(out, []byte("s3cret@")) {
				t.Errorf("the output shows the password:\n%s", out)
			}
		})
	}

	t.Run("nothing at the URL", func(t *testing.T) {
		addr, _, logs := startExporter(t, "c00kie", "--erlang.node=a@b", "--sink.clickhouse.url=http://"+testkit.FreeAddr(t)+"/")
		testkit.WaitFor(t, "a counted unreachable failure", 30*time.Second, func() bool {
			return strings.Contains(get(addr+"/metrics"), `beam_exporter_sink_insert_failures_total{reason="unreachable"} `) &&
				!strings.Contains(get(addr+"/metrics"), `beam_exporter_sink_insert_failures_total{reason="unreachable"} 0`)
		})
		if !strings.Contains(logs.String(), "ClickHouse does not answer") {
			t.Errorf("no log line says ClickHouse does not answer:\n%s", logs)
		}
	})
}

// get returns the body at http://u, or "" on failure.
func get(u string) string {
	resp, err := http.Get("http://" + u)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// The binary writes a real node's rankings to ClickHouse as a user with a
// password, its /metrics with the sink's families passes promtool, and a
// SIGTERM ends it cleanly; the password shows nowhere.
func TestSinkEndToEnd(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: apt-get install prometheus")
	}
	ch := startClickHouse(t)
	node := erltest.Start(t, erltest.Options{Name: erltest.UniqueName("e2e_sink")})
	addr, logs := testkit.FreeAddr(t), &testkit.LockedBuffer{}
	cmd := exec.Command(binary, "--erlang.node="+node.Name, "--web.listen-address="+addr,
		"--sink.clickhouse.url="+ch.URL, "--sink.clickhouse.user=sink", "--sink.clickhouse.create-table",
		"--sink.clickhouse.interval=1s", "--sink.clickhouse.pod=e2e-pod-0", "--sink.clickhouse.deployment=e2e")
	cmd.Env = append(withoutCookieEnv(), "BEAM_EXPORTER_ERLANG_COOKIE="+node.Cookie, clickhouse.PasswordEnv+"="+chtest.Password)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	args, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))

	testkit.WaitFor(t, "rows of the node in ClickHouse", 60*time.Second, func() bool {
		n, _ := ch.Query("SELECT count() FROM default.beam_top_processes WHERE node = '" + node.Name + "' AND pod = 'e2e-pod-0'")
		return n != "" && n != "0"
	})
	body := []byte(get(addr + "/metrics"))
	for _, family := range []string{"beam_exporter_sink_rows_written_total", "beam_exporter_sink_rows_dropped_total 0",
		"beam_exporter_sink_buffered_rows_limit 50000", `beam_exporter_sink_insert_failures_total{reason="auth"} 0`} {
		if !bytes.Contains(body, []byte(family)) {
			t.Errorf("/metrics lacks %s", family)
		}
	}
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = bytes.NewReader(body)
	if out, err := lint.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("still running 20 s after SIGTERM:\n%s", logs)
	}
	for what, text := range map[string][]byte{"metrics": body, "logs": []byte(logs.String()), "arguments": args} {
		if bytes.Contains(text, []byte(chtest.Password)) {
			t.Errorf("the ClickHouse password appears in the exporter's %s", what)
		}
	}
	if !strings.Contains(logs.String(), "writing top processes to ClickHouse") {
		t.Errorf("no log line names the table:\n%s", logs)
	}
}
