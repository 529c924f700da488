// The demo node's workload, and the node and the exporter started in turn.

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

// workload keeps every panel of the dashboards busy: a process that works
// half the time, a mailbox that grows without bound, a large ETS table and a
// 64 MB binary, each held by a registered process so it has a stable name.
const workload = `
Hold = fun(Name, Init) -> register(Name, spawn(fun() -> State = Init(), receive never -> State end end)) end,
Hold(demo_mailbox, fun() -> ok end),
Hold(demo_binary, fun() -> binary:copy(<<0>>, 64 * 1024 * 1024) end),
Hold(demo_ets_owner, fun() -> T = ets:new(demo_table, [named_table, public]), ets:insert(T, [{I, I} || I <- lists:seq(1, 50000)]), T end),
register(demo_worker, spawn(fun() -> Work = fun W() -> _ = lists:sum(lists:seq(1, 200000)), timer:sleep(5), W() end, Work() end)),
register(demo_sender, spawn(fun() -> Send = fun S() -> demo_mailbox ! {tick, erlang:monotonic_time()}, timer:sleep(20), S() end, Send() end)).
`

func main() {
	listen := flag.String("listen", ":9882", "Address for the exporter's web server.")
	flag.Parse()
	if err := run(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(listen string) error {
	if _, err := exec.LookPath("erl"); err != nil {
		return fmt.Errorf("erl is not installed: run `apt-get install erlang-nox` (as root)")
	}
	host, err := os.Hostname()
	if err != nil {
		return err
	}
	host, _, _ = strings.Cut(host, ".")
	nodeName := "beam_demo@" + host
	secret := make([]byte, 16)
	rand.Read(secret)
	cookie := hex.EncodeToString(secret)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// erl starts EPMD itself when none runs.
	node := exec.Command("erl", "-sname", "beam_demo", "-setcookie", cookie, "-noshell", "-eval", workload)
	node.Stdout, node.Stderr = os.Stdout, os.Stderr
	node.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := node.Start(); err != nil {
		return fmt.Errorf("starting the demo node: %w", err)
	}
	defer syscall.Kill(-node.Process.Pid, syscall.SIGKILL)
	nodeExited := make(chan error, 1)
	go func() { nodeExited <- node.Wait() }()
	// The exporter's first attempt to connect would otherwise find no node
	// yet, and the demo would open on an error.
	if err := waitRegistered(ctx, "beam_demo", nodeExited); err != nil {
		return err
	}

	exporter := exec.Command("./beam_exporter", "--erlang.node="+nodeName, "--web.listen-address="+listen)
	exporter.Env = append(os.Environ(), "BEAM_EXPORTER_ERLANG_COOKIE="+cookie)
	exporter.Stdout, exporter.Stderr = os.Stdout, os.Stderr
	if err := exporter.Start(); err != nil {
		return fmt.Errorf("starting beam_exporter (run `make build` first): %w", err)
	}
	defer exporter.Process.Signal(syscall.SIGTERM)

	base := "http://localhost" + listen
	if !strings.HasPrefix(listen, ":") {
		base = "http://" + listen
	}
	if err := waitUp(ctx, base+"/metrics"); err != nil {
		return err
	}
	fmt.Printf("\nbeam_exporter is watching %s\n  metrics:       %s/metrics\n  top processes: %s/top\nPress Ctrl-C to stop the node and the exporter.\n\n",
		nodeName, base, base)

	exporterExited := make(chan error, 1)
	go func() { exporterExited <- exporter.Wait() }()
	select {
	case <-ctx.Done():
		fmt.Println("stopping")
		return nil
	case err := <-nodeExited:
		return fmt.Errorf("the demo node exited: %v", err)
	case err := <-exporterExited:
		return fmt.Errorf("beam_exporter exited: %v", err)
	}
}

// waitRegistered polls the local EPMD until it lists the node alive, which
// the node registers once it listens for distribution.
func waitRegistered(ctx context.Context, alive string, nodeExited <-chan error) error {
	deadline := time.After(30 * time.Second)
	for {
		names, err := erlnode.EPMDNames(ctx, "localhost", erlnode.DefaultEPMDPort)
		if err == nil && slices.Contains(names, alive) {
			return nil
		}
		select {
		case err := <-nodeExited:
			return fmt.Errorf("the demo node exited before it registered in EPMD: %v", err)
		case <-deadline:
			return fmt.Errorf("the demo node did not register in EPMD within 30s")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitUp polls the metrics page until the exporter reports the node up.
func waitUp(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			buf := make([]byte, 1<<20)
			n, _ := resp.Body.Read(buf)
			resp.Body.Close()
			if strings.Contains(string(buf[:n]), "\nbeam_up 1") {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("the exporter did not report the demo node up within 30s (see the log above)")
}
