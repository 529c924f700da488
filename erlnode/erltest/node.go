// The node harness: starting, evaluating in, signalling, killing and restarting real BEAM nodes.

package erltest

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest/debroot"
)

// Timeouts of the harness, as the integration tests expect them.
const (
	StartTimeout = 60 * time.Second // until the node is in EPMD and answers the control channel
	EvalTimeout  = 60 * time.Second // for one Eval
	KillTimeout  = 30 * time.Second // until a killed node is reaped and gone from EPMD
)

// Options describe a node to start.
type Options struct {
	OTP    string   // "25" (host), "27", "29"; "" means the host's release
	Name   string   // short node name (erl -sname); caller makes it unique (see UniqueName)
	Cookie string   // "" picks a random one, available as Node.Cookie
	Args   []string // extra erl arguments, e.g. "+S", "2:2"
	// LongName starts the node with a long name, erl -name Name@127.0.0.1:
	// an address, since this machine's hostname may have no domain.
	LongName bool
}

// Node is a running (or killed) BEAM node started by Start.
type Node struct {
	Name    string // full node name, e.g. foo@vm
	Cookie  string
	OTP     string // OTP major, e.g. "27"
	Version string // full OTP version of the emulator, e.g. "27.3.4.1"
	Root    string // chroot directory the node runs in; "" for the host's erl

	opts   Options
	home   string     // HOME of a host node (root nodes use the root's /root)
	evalMu sync.Mutex // one request on the control channel at a time
	mu     sync.Mutex // guards p and the exported fields
	p      *proc
}

// proc is one run of the emulator.
type proc struct {
	cmd     *exec.Cmd
	pid     int // beam.smp's OS pid, as reported by the node itself
	pgid    int
	stdin   *os.File
	marker  string
	replies chan reply
	exited  chan struct{} // closed once the emulator has been reaped
	waitErr error         // set before exited is closed
	killed  atomic.Bool   // set by killGroup; read by Eval without n.mu
	out     *outputTail
	nextID  int
}

type reply struct{ id, status, text string }

// EvalError is an exception or syntax error raised by an evaluated expression.
type EvalError struct {
	Status string // "raised" or "syntax"
	Text   string // formatted exception or error
}

func (e *EvalError) Error() string { return e.Status + ": " + e.Text }

var nameCounter atomic.Int64

var nameJunk = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// UniqueName returns a node name that is unique across the test binaries
// sharing the host's EPMD: prefix (reduced to characters node names
// allow), this process's pid and a counter.
func UniqueName(prefix string) string {
	prefix = nameJunk.ReplaceAllString(prefix, "_")
	if prefix == "" {
		prefix = "erltest"
	}
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), nameCounter.Add(1))
}

// Start starts the node with `erl -sname Name -setcookie Cookie -noshell ...`
// (-name Name@127.0.0.1 with LongName)
// (chrooted into the Debian root for 27/29), waits until it is registered
// in EPMD and answers the control channel, and registers t.Cleanup to
// stop it. It calls t.Fatal with a clear message when erl is missing or the
// node does not come up within 60s.
func Start(t testing.TB, o Options) *Node {
	t.Helper()
	if o.OTP == "" {
		o.OTP = HostOTP
	}
	if o.Name == "" || strings.Contains(o.Name, "@") || nameJunk.MatchString(o.Name) {
		t.Fatalf("erltest: node name %q must be a non-empty short name of letters, digits, _ and -", o.Name)
	}
	if o.Cookie == "" {
		o.Cookie = "erltest-" + randomHex(12)
	}
	o.Args = append([]string(nil), o.Args...)
	root := rootFor(t, o.OTP) // fails the test for an unsupported release
	if err := ensureEPMD(); err != nil {
		t.Fatalf("erltest: %v", err)
	}
	n := &Node{Cookie: o.Cookie, OTP: o.OTP, Root: root, opts: o}
	if root == "" {
		home, err := os.MkdirTemp("", "erltest-home-")
		if err != nil {
			t.Fatalf("erltest: %v", err)
		}
		n.home = home
	}
	t.Cleanup(n.cleanup)
	if err := n.launch(); err != nil {
		t.Fatalf("erltest: starting OTP %s node %s: %v", o.OTP, o.Name, err)
	}
	return n
}

// launch starts the emulator and waits until it is usable. Callers hold n.mu
// or own n exclusively.
func (n *Node) launch() error {
	o := n.opts
	erl := "/usr/bin/erl"
	if n.Root != "" {
		if _, err := os.Stat(filepath.Join(n.Root, erl)); err != nil {
			return fmt.Errorf("erl is missing in the root %s (delete it to rebuild): %w", n.Root, err)
		}
	} else {
		p, err := exec.LookPath("erl")
		if err != nil {
			return errors.New("erl is not on PATH (apt-get install erlang-nox)")
		}
		erl = p
	}
	names, err := EPMDNames()
	if err != nil {
		return fmt.Errorf("asking epmd: %w", err)
	}
	if port, taken := names[o.Name]; taken {
		return fmt.Errorf("the name %q is already registered in EPMD (port %d): another node, or a stray one from an earlier run, uses it", o.Name, port)
	}

	marker := "@@erltest-" + randomHex(8)
	nameArgs := []string{"-sname", o.Name}
	if o.LongName {
		nameArgs = []string{"-name", o.Name + "@127.0.0.1"}
	}
	args := append(nameArgs, "-setcookie", o.Cookie, "-noshell",
		// Only the host's epmd may run (see ensureEPMD).
		"-start_epmd", "false")
	args = append(args, o.Args...)
	args = append(args, "-eval", replEval(marker))
	cmd := exec.Command(erl, args...)
	cmd.Env = debroot.Env()
	// Setpgid: the emulator and its helpers (erl_child_setup, os:cmd
	// children) form one group that cleanup can kill as a whole.
	// Pdeathsig: if the test binary dies, the node goes with it.
	// Chroot via the syscall rather than chroot(8): no extra process sits
	// between us and the emulator, and erl execs erlexec which execs
	// beam.smp, so our child's pid ends up being the emulator's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Chroot: n.Root}
	if n.Root != "" {
		cmd.Dir = "/tmp" // inside the root; crash dumps land there
	} else {
		cmd.Dir = n.home
		for i, kv := range cmd.Env {
			if strings.HasPrefix(kv, "HOME=") {
				cmd.Env[i] = "HOME=" + n.home // erlexec insists on a HOME
			}
		}
	}

	// Plain OS pipes rather than cmd.StdoutPipe: Wait then does not wait
	// for our readers, so the exit is noticed even while a forked helper
	// still holds the output open.
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	p := &proc{cmd: cmd, stdin: inW, marker: marker, replies: make(chan reply, 1024),
		exited: make(chan struct{}), out: &outputTail{}}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return fmt.Errorf("exec %s: %w", erl, err)
	}
	p.pid, p.pgid = cmd.Process.Pid, cmd.Process.Pid
	go p.readStdout(outR)
	go p.readStderr(errR)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	n.p = p

	deadline := time.Now().Add(StartTimeout)
	r, err := p.await("0", deadline)
	if err == nil && r.status != "ready" {
		err = fmt.Errorf("unexpected first reply %q: %s", r.status, r.text)
	}
	if err != nil {
		p.killGroup()
		return fmt.Errorf("node did not come up: %w", err)
	}
	// ready text: OSPid Node OtpRelease OtpVersion
	f := strings.Fields(r.text)
	if len(f) != 4 {
		p.killGroup()
		return fmt.Errorf("bad ready line %q", r.text)
	}
	if pid, err := strconv.Atoi(f[0]); err == nil {
		p.pid = pid
	}
	n.Name, n.Version = f[1], f[3]
	if f[2] != o.OTP {
		p.killGroup()
		return fmt.Errorf("%s runs OTP %s (%s), not the requested %s", erl, f[2], f[3], o.OTP)
	}
	for {
		names, err := EPMDNames()
		if err == nil {
			if _, ok := names[o.Name]; ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			p.killGroup()
			return fmt.Errorf("node answers on stdin but is not registered in EPMD after %s (names: %v, err: %v)%s",
				StartTimeout, names, err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readStdout splits the emulator's stdout into replies (lines starting
// with the marker) and everything else, which is kept for diagnostics.
func (p *proc) readStdout(r *os.File) {
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if rest, ok := strings.CutPrefix(line, p.marker+" "); ok {
			f := strings.Fields(rest)
			if len(f) >= 2 {
				rep := reply{id: f[0], status: f[1]}
				if len(f) >= 3 {
					b, derr := base64.StdEncoding.DecodeString(f[2])
					if derr != nil {
						rep.status, rep.text = "internal", "undecodable reply: "+f[2]
					} else {
						rep.text = string(b)
					}
				}
				select {
				case p.replies <- rep:
				default: // nobody will ever read that many stale replies
				}
			}
		} else if strings.TrimSpace(line) != "" {
			p.out.add("stdout: " + line)
		}
		if err != nil {
			return
		}
	}
}

func (p *proc) readStderr(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.out.add("stderr: " + sc.Text() + "\n")
	}
}

// await waits for the reply with the given id, skipping stale replies of
// requests that timed out earlier.
func (p *proc) await(id string, deadline time.Time) (reply, error) {
	waited := time.Until(deadline)
	timer := time.NewTimer(waited)
	defer timer.Stop()
	for {
		select {
		case r := <-p.replies:
			if r.id == id {
				return r, nil
			}
		case <-p.exited:
			// Replies read before the exit are still good.
			select {
			case r := <-p.replies:
				if r.id == id {
					return r, nil
				}
				continue
			default:
			}
			return reply{}, fmt.Errorf("the emulator exited (%v)%s", p.waitErr, p.out.String())
		case <-timer.C:
			return reply{}, fmt.Errorf("no answer within %s (is the node stopped or busy?)%s", waited.Round(time.Second), p.out.String())
		}
	}
}

// running reports whether the emulator has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// killGroup SIGKILLs the emulator and everything in its process group.
func (p *proc) killGroup() {
	p.killed.Store(true)
	_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	p.stdin.Close()
}

// Eval evaluates one Erlang expression sequence (e.g. "length(processes()).")
// inside the node and returns the result formatted with io_lib:format("~0p").
// It fails the test if the expression raises, showing the error, or if no
// answer comes within 60 s. A missing final dot is added. Bindings do not
// persist between calls; ETS tables and processes the expression creates do.
func (n *Node) Eval(t testing.TB, expr string) string {
	t.Helper()
	out, err := n.TryEval(expr, EvalTimeout)
	if err != nil {
		t.Fatalf("erltest: Eval on %s (OTP %s) of %q: %v", n.nodeName(), n.OTP, expr, err)
	}
	return out
}

// TryEval is Eval returning the error instead of failing the test: an
// *EvalError when the expression raised or did not parse, another error
// when the node did not answer within timeout or is not running.
func (n *Node) TryEval(expr string, timeout time.Duration) (string, error) {
	n.evalMu.Lock()
	defer n.evalMu.Unlock()
	n.mu.Lock()
	p := n.p
	n.mu.Unlock()
	if p == nil {
		return "", errors.New("the node was never started")
	}
	if !p.running() {
		if p.killed.Load() {
			return "", errors.New("the node is not running: it was killed")
		}
		return "", fmt.Errorf("the node is not running: the emulator exited (%v)%s", p.waitErr, p.out.String())
	}
	src := strings.TrimSpace(expr)
	if !strings.HasSuffix(src, ".") {
		src += "\n." // on its own line in case the expression ends in a % comment
	}
	p.nextID++
	id := strconv.Itoa(p.nextID)
	deadline := time.Now().Add(timeout)
	// A stopped node stops reading; the deadline keeps a large request
	// from blocking forever once the pipe buffer is full.
	_ = p.stdin.SetWriteDeadline(deadline)
	if _, err := io.WriteString(p.stdin, "EVAL "+id+" "+base64.StdEncoding.EncodeToString([]byte(src))+"\n"); err != nil {
		return "", fmt.Errorf("sending the expression: %w", err)
	}
	r, err := p.await(id, deadline)
	if err != nil {
		return "", err
	}
	if r.status != "ok" {
		return "", &EvalError{Status: r.status, Text: r.text}
	}
	return r.text, nil
}

// Kill SIGKILLs the emulator (beam.smp) and its helpers, and waits until it
// is reaped and EPMD has forgotten the name.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.kill(); err != nil {
		t.Fatalf("erltest: killing %s: %v", n.Name, err)
	}
}

// kill does Kill's work; callers hold n.mu.
func (n *Node) kill() error {
	p := n.p
	if p == nil {
		return nil
	}
	p.killGroup()
	deadline := time.Now().Add(KillTimeout)
	select {
	case <-p.exited:
	case <-time.After(KillTimeout):
		return fmt.Errorf("pid %d still not reaped after SIGKILL and %s", p.pid, KillTimeout)
	}
	// EPMD drops a name when the node's connection to it closes, which
	// the kernel does right after the emulator dies; poll for it anyway.
	for {
		names, err := EPMDNames()
		if err == nil {
			if _, ok := names[n.opts.Name]; !ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("EPMD still lists %s %s after the emulator died (err %v)", n.opts.Name, KillTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart starts the node again under the same name and cookie (killing
// it first if it still runs). OSPid changes; Name and Cookie do not.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil && n.p.running() {
		if err := n.kill(); err != nil {
			t.Fatalf("erltest: restarting %s: %v", n.Name, err)
		}
	}
	if err := n.launch(); err != nil {
		t.Fatalf("erltest: restarting OTP %s node %s: %v", n.OTP, n.opts.Name, err)
	}
}

// Signal sends sig (e.g. SIGSTOP/SIGCONT) to the beam.smp process only.
// After SIGSTOP it returns once every thread of the emulator is stopped, and
// after SIGCONT once none is: kill(2) only queues a stop, which one thread
// takes when it is next scheduled and then passes to the others, so on a
// loaded machine the emulator goes on running for a while after kill returns.
func (n *Node) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	n.mu.Lock()
	p := n.p
	n.mu.Unlock()
	if p == nil || !p.running() {
		t.Fatalf("erltest: signal %v to %s: the node is not running", sig, n.Name)
	}
	if err := syscall.Kill(p.pid, sig); err != nil {
		t.Fatalf("erltest: signal %v to %s (pid %d): %v", sig, n.Name, p.pid, err)
	}
	var wantStopped bool
	switch sig {
	case syscall.SIGSTOP:
		wantStopped = true
	case syscall.SIGCONT:
	default:
		return
	}
	deadline := time.Now().Add(KillTimeout)
	for {
		all, none, err := threadsStopped(p.pid)
		if err != nil {
			t.Fatalf("erltest: after %v to %s: %v", sig, n.Name, err)
		}
		if wantStopped && all || !wantStopped && none {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("erltest: %s (pid %d) did not take %v within %s", n.Name, p.pid, sig, KillTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// threadsStopped reads the state of every thread of pid from /proc: whether
// all of them, or none of them, are in a job-control stop.
func threadsStopped(pid int) (all, none bool, err error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false, false, fmt.Errorf("reading the emulator's threads: %w", err)
	}
	all, none = true, true
	for _, task := range tasks {
		stat, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			continue // the thread exited meanwhile
		}
		state, err := threadState(string(stat))
		if err != nil {
			return false, false, err
		}
		stopped := state == 'T'
		all = all && stopped
		none = none && !stopped
	}
	return all, none, nil
}

// threadState returns the state field of a /proc/<pid>/task/<tid>/stat line:
// the first field after the command name, which is in parentheses and may
// itself hold spaces and parentheses.
func threadState(stat string) (byte, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0, fmt.Errorf("malformed thread stat %q", stat)
	}
	return stat[i+2], nil
}

// OSPid returns the OS pid of the node's beam.smp process (of the current
// run; 0 before the first start).
func (n *Node) OSPid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return 0
	}
	return n.p.pid
}

// Port returns the node's distribution listen port as registered in EPMD.
func (n *Node) Port(t testing.TB) int {
	t.Helper()
	names, err := EPMDNames()
	if err != nil {
		t.Fatalf("erltest: asking epmd: %v", err)
	}
	port, ok := names[n.opts.Name]
	if !ok {
		t.Fatalf("erltest: %s is not registered in EPMD", n.Name)
	}
	return port
}

// Output returns the node's recent stdout/stderr lines other than
// control-channel replies, for diagnostics.
func (n *Node) Output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return ""
	}
	return n.p.out.lines()
}

func (n *Node) nodeName() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Name != "" {
		return n.Name
	}
	return n.opts.Name
}

// cleanup stops the node at the end of the test. SIGKILL rather than a
// graceful halt: it works on a SIGSTOPped node too and nothing on the node
// needs saving.
func (n *Node) cleanup() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil && n.p.running() {
		if err := n.kill(); err != nil {
			fmt.Fprintf(os.Stderr, "erltest: cleanup of %s: %v\n", n.opts.Name, err)
		}
	}
	if n.home != "" {
		os.RemoveAll(n.home)
	}
}

// outputTail keeps the last lines a node printed outside the protocol.
type outputTail struct {
	mu sync.Mutex
	l  []string
}

func (o *outputTail) add(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(line) > 4096 {
		line = line[:4096] + "...\n"
	}
	o.l = append(o.l, line)
	if len(o.l) > 100 {
		o.l = o.l[len(o.l)-100:]
	}
}

func (o *outputTail) lines() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.l, "")
}

// String formats the tail for error messages.
func (o *outputTail) String() string {
	s := o.lines()
	if s == "" {
		return " (the node printed nothing)"
	}
	return "\n--- node output (last lines) ---\n" + s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
