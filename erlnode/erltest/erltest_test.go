// Integration test of the harness itself: real nodes of every release in Releases().

package erltest

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNodes(t *testing.T) {
	for _, rel := range Releases() {
		t.Run("OTP"+rel, func(t *testing.T) {
			// Parallel: on a fresh machine the roots are built concurrently.
			t.Parallel()
			n := Start(t, Options{OTP: rel, Name: UniqueName("erltest" + rel), Cookie: "erltest_cookie", Args: []string{"+S", "2:2"}})
			t.Logf("%s: OTP %s, pid %d, dist port %d, root %q", n.Name, n.Version, n.OSPid(), n.Port(t), n.Root)

			if got, want := n.Eval(t, "erlang:system_info(otp_release)."), strconv.Quote(rel); got != want {
				t.Fatalf("otp_release = %s, want %s", got, want)
			}
			if host, _ := os.Hostname(); !strings.HasSuffix(n.Name, "@"+strings.Split(host, ".")[0]) {
				t.Errorf("node name %q does not end in @<short host name %q>", n.Name, host)
			}
			if got := n.Eval(t, "{erlang:get_cookie(), erlang:system_info(schedulers_online)}"); got != "{erltest_cookie,2}" {
				t.Errorf("cookie/schedulers = %s", got)
			}

			// Multi-line, multi-statement; the table and the process must
			// outlive the Eval that made them.
			n.Eval(t, `T = ets:new(erltest_t, [named_table, public]),
				[ets:insert(T, {I}) || I <- lists:seq(1, 100000)],
				P = spawn_link(fun() -> receive stop -> ok end end),
				register(erltest_p, P),
				ok.`)
			if got := n.Eval(t, "{ets:info(erltest_t, size), is_process_alive(whereis(erltest_p))}."); got != "{100000,true}" {
				t.Fatalf("table/process after Eval = %s", got)
			}
			if got := n.Eval(t, "io:format(\"noise without newline\"), <<\"ü\"/utf8>> % trailing comment"); got != "<<\"\u00c3\u00bc\">>" { // ~0p shows printable Latin-1 bytes as text
				t.Errorf("binary result = %s", got)
			}

			// Errors come back as errors, and the channel survives them.
			_, err := n.TryEval("1/0.", 10*time.Second)
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Status != "raised" || !strings.Contains(ee.Text, "badarith") {
				t.Errorf("1/0: err = %v", err)
			}
			_, err = n.TryEval("foo(.", 10*time.Second)
			if !errors.As(err, &ee) || ee.Status != "syntax" {
				t.Errorf("syntax error: err = %v", err)
			}
			n.Eval(t, "exit(whereis(erltest_p), kill), ok.") // linked: the evaluator traps the exit
			if got := n.Eval(t, "1 + 1."); got != "2" {
				t.Fatalf("after errors: 1+1 = %s", got)
			}

			// SIGSTOP makes the node unresponsive; SIGCONT brings it back.
			n.Signal(t, syscall.SIGSTOP)
			if _, err := n.TryEval("ok.", 2*time.Second); err == nil {
				t.Errorf("a stopped node answered")
			}
			n.Signal(t, syscall.SIGCONT)
			if got := n.Eval(t, "ok."); got != "ok" {
				t.Fatalf("after SIGCONT = %s", got)
			}

			// Kill: the emulator is gone and EPMD forgot it.
			pid := n.OSPid()
			comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
			if err != nil || !strings.HasPrefix(string(comm), "beam") {
				t.Errorf("pid %d is %q (%v), want the beam emulator", pid, comm, err)
			}
			n.Kill(t)
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				t.Errorf("pid %d still exists after Kill", pid)
			}
			names, err := EPMDNames()
			if err != nil {
				t.Fatal(err)
			}
			short, _, _ := strings.Cut(n.Name, "@")
			if _, ok := names[short]; ok {
				t.Errorf("EPMD still lists %s", short)
			}
			if _, err := n.TryEval("ok.", time.Second); err == nil {
				t.Errorf("a killed node answered")
			}

			n.Restart(t)
			if n.OSPid() == pid {
				t.Errorf("same pid %d after Restart", pid)
			}
			if got, want := n.Eval(t, "{node(), erlang:system_info(otp_release), ets:info(erltest_t)}."),
				"{"+n.Name+","+strconv.Quote(rel)+",undefined}"; got != want {
				t.Fatalf("after Restart = %s, want %s", got, want)
			}
		})
	}
}
