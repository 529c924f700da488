// Throwaway BEAM nodes for the benchmark, with its Erlang module loaded.

package bench

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

//go:embed beam_exporter_bench.erl
var benchModule []byte

const moduleName = "beam_exporter_bench"

// node is one benchmark node and the hidden-node client connected to it.
type node struct {
	name, cookie string
	cmd          *exec.Cmd
	client       *erlnode.Client
}

// compileModule writes and compiles the node-side module into a fresh
// directory, which the nodes get with -pa.
func compileModule() (string, error) {
	dir, err := os.MkdirTemp("", "beam_bench")
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, moduleName+".erl")
	if err := os.WriteFile(src, benchModule, 0o644); err != nil {
		return "", err
	}
	if out, err := exec.Command("erlc", "-o", dir, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("erlc %s: %w: %s", src, err, out)
	}
	return dir, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startNode starts a node allowed twice procs processes. Schedulers do not
// busy-wait before sleeping (+sbwt none), so that the node's CPU time is
// the work done rather than spinning.
func startNode(ctx context.Context, moduleDir string, procs int) (*node, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	host, _, _ = strings.Cut(host, ".")
	alive := "beam_bench_" + randomHex(4)
	n := &node{name: alive + "@" + host, cookie: randomHex(16)}
	n.cmd = exec.Command("erl", "-sname", alive, "-setcookie", n.cookie, "-noinput", "-pa", moduleDir,
		"+P", strconv.Itoa(max(2*procs, 262144)), "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none")
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting erl: %w", err)
	}
	n.client, err = erlnode.New(erlnode.Config{
		Target: n.name, Cookie: n.cookie, LoadProbe: true, Session: erlnode.SessionOptions{MicrostateAccounting: true},
		LocalName: "beam_bench_exporter_" + randomHex(4) + "@" + host,
	})
	if err != nil {
		n.stop()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err = n.client.EnsureConnected(ctx); err == nil {
			return n, nil
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("connecting to %s: %w", n.name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (n *node) stop() {
	if n.client != nil {
		n.client.Close()
	}
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	n.cmd.Wait()
}

// call runs a function of the benchmark module on the node.
func (n *node) call(ctx context.Context, timeout time.Duration, function string, args ...etf.Term) (etf.Term, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return n.client.Call(ctx, moduleName, function, args...)
}

// cost reads the node's CPU time (ms) and reductions so far.
func (n *node) cost(ctx context.Context) (nodeCost, error) {
	t, err := n.call(ctx, 10*time.Second, "node_cost")
	if err != nil {
		return nodeCost{}, err
	}
	return parseNodeCost(t)
}
