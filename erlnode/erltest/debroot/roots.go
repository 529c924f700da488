// Debootstrap roots holding Debian trixie's and sid's Erlang, built once and cached between runs.

package debroot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stampName marks a finished root. The root is renamed into place only
// after the stamp is written, so an interrupted build never looks complete.
const stampName = ".erltest-root"

// cacheDir returns the directory caching the roots, one subdirectory per suite.
func cacheDir() string {
	if d := strings.TrimSpace(os.Getenv("BEAM_EXPORTER_OTP_ROOTS")); d != "" {
		return filepath.Clean(d)
	}
	return "/var/cache/beam_exporter/otp-roots"
}

// Ensure returns the complete root of the Debian suite, which ships OTP
// major otp, ready for a node: built if needed, with the host's network
// files and, where mount(2) is allowed, a proc file system (see mountProc).
func Ensure(suite, otp string) (string, error) {
	root, err := ensureBuilt(suite, otp)
	if err != nil {
		return "", err
	}
	if err := refreshNetworkFiles(root); err != nil {
		return "", err
	}
	if err := mountProc(filepath.Dir(root), suite); err != nil {
		// Not fatal: only what reads /proc inside the root needs it, and
		// a machine that refuses mount(2) can still run every other test.
		progressf("[%s] nodes in this root cannot read /proc: %v", suite, err)
	}
	return root, nil
}

// ensureBuilt returns the complete root of the suite, building it first if
// needed under an exclusive lock: go test runs package test binaries in
// parallel, and each may want the same root. flock is per open file, so it
// also serializes goroutines of one process.
func ensureBuilt(suite, otp string) (string, error) {
	base := cacheDir()
	final := filepath.Join(base, suite)
	if rootComplete(final) {
		return final, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("creating the roots cache (set BEAM_EXPORTER_OTP_ROOTS to a writable directory): %w", err)
	}
	lock, unlock, err := lockFile(filepath.Join(base, "."+suite+".lock"), func() {
		progressf("[%s] another test is building this root; waiting for it", suite)
	})
	if err != nil {
		return "", err
	}
	defer unlock()
	if rootComplete(final) {
		return final, nil
	}

	// Holding the lock, any build directory left over is from a builder
	// that died, and a suite directory without a stamp is not ours.
	stale, _ := filepath.Glob(filepath.Join(base, "."+suite+".build-*"))
	if _, err := os.Lstat(final); err == nil {
		stale = append(stale, final)
	}
	for _, dir := range stale {
		progressf("[%s] removing unfinished root %s", suite, dir)
		if err := removeRoot(dir); err != nil {
			return "", err
		}
	}
	return buildRoot(base, suite, otp, lock)
}

// mountProc mounts a proc file system on the suite's /proc unless one is
// there: a node reads /proc/self as it would on a host (os_memory exports
// its resident memory from /proc/self/status). The mount is made once, under
// the suite's lock, and stays for every later node; removeRoot unmounts it
// before it deletes a root.
func mountProc(base, suite string) error {
	// mountinfo names the real path.
	target, err := filepath.EvalSymlinks(filepath.Join(base, suite, "proc"))
	if err != nil {
		return err
	}
	if isMountPoint(target) {
		return nil
	}
	_, unlock, err := lockFile(filepath.Join(base, "."+suite+".lock"), nil)
	if err != nil {
		return err
	}
	defer unlock()
	if isMountPoint(target) {
		return nil
	}
	if err := syscall.Mount("proc", target, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting proc on %s, for the nodes in the root: %w", target, err)
	}
	return nil
}

// rootPackages are installed in every root: the emulator, and ssl for the
// tests of TLS distribution.
const rootPackages = "erlang-base,erlang-ssl"

// rootComplete reports whether dir is a finished root. A root built before
// ssl was in rootPackages is not, and is built again.
func rootComplete(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, stampName)); err != nil {
		return false
	}
	return hasRootPackages(dir)
}

// hasRootPackages looks for a file of each of rootPackages.
func hasRootPackages(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "usr/bin/erl")); err != nil {
		return false
	}
	tlsDist, _ := filepath.Glob(filepath.Join(dir, "usr/lib/erlang/lib/ssl-*/ebin/inet_tls_dist.beam"))
	return len(tlsDist) > 0
}

// refreshNetworkFiles copies the host's /etc/hosts and /etc/resolv.conf
// into the root, on every use rather than only at build time, because a
// cached root may outlive the host name it was built under and nodes must
// resolve the short host name to the host's loopback.
func refreshNetworkFiles(root string) error {
	for _, f := range []string{"/etc/hosts", "/etc/resolv.conf"} {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		if err := syncFile(f, filepath.Join(root, f)); err != nil {
			return fmt.Errorf("copying %s into %s: %w", f, root, err)
		}
	}
	return nil
}

// buildRoot debootstraps suite with rootPackages into a temporary directory
// next to the final one, verifies its Erlang, and renames it into place.
// lock is the held lock file, handed down to debootstrap (see runStreamed).
func buildRoot(base, suite, otp string, lock *os.File) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("building a root needs root privileges (debootstrap, chroot)")
	}
	debootstrap, err := exec.LookPath("debootstrap")
	if err != nil {
		return "", errors.New("debootstrap not found (apt-get install debootstrap)")
	}
	mirror, err := debianMirror()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	start := time.Now()
	progressf("[%s] building the OTP %s root in %s from %s; this happens once and takes a few minutes", suite, otp, base, mirror)

	kc, err := chooseKeyring(ctx, base, suite, mirror, func() (string, error) { return Ensure("trixie", "27") })
	if err != nil {
		return "", err
	}
	progressf("[%s] Release signature: %s", suite, kc.how)

	tmp, err := os.MkdirTemp(base, "."+suite+".build-")
	if err != nil {
		return "", err
	}
	done := false
	defer func() {
		if !done {
			if err := removeRoot(tmp); err != nil {
				progressf("[%s] could not clean up %s: %v", suite, tmp, err)
			}
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700; it becomes the root's "/"
		return "", err
	}

	args := []string{"--variant=minbase", "--include=" + rootPackages, "--components=main"}
	args = append(args, kc.args...)
	args = append(args, suite, tmp, mirror)
	progressf("[%s] debootstrap %s", suite, strings.Join(args, " "))
	if err := runStreamed(ctx, suite, lock, exec.CommandContext(ctx, debootstrap, args...)); err != nil {
		return "", fmt.Errorf("debootstrap: %w%s", err, logTail(filepath.Join(tmp, "debootstrap/debootstrap.log")))
	}
	if err := refreshNetworkFiles(tmp); err != nil {
		return "", err
	}
	if !hasRootPackages(tmp) {
		// debootstrap's resolver is simple; apt inside the root is not.
		progressf("[%s] Erlang incomplete after debootstrap; installing %s with apt-get inside the root", suite, rootPackages)
		sh := "apt-get update && apt-get install -y --no-install-recommends " + strings.ReplaceAll(rootPackages, ",", " ")
		cmd := exec.CommandContext(ctx, "chroot", tmp, "/bin/sh", "-c", sh)
		cmd.Env = append(Env(), "DEBIAN_FRONTEND=noninteractive")
		if err := runStreamed(ctx, suite, lock, cmd); err != nil {
			return "", fmt.Errorf("apt-get install %s in the root: %w", rootPackages, err)
		}
	}
	cleanAptCaches(tmp)

	rel, version, pkg, err := verifyRoot(ctx, tmp)
	if err != nil {
		return "", err
	}
	if rel != otp {
		return "", fmt.Errorf("Debian %s now ships OTP %s (OTP_VERSION %s, erlang-base %s), not OTP %s: update debianSuites in erlnode/erltest/releases.go", suite, rel, version, pkg, otp)
	}
	took := time.Since(start).Round(time.Second)
	stamp := fmt.Sprintf("suite=%s\nmirror=%s\nsignature=%s\nerlang-base=%s\notp_release=%s\notp_version=%s\nbuilt=%s\nbuild_seconds=%d\n",
		suite, mirror, kc.how, pkg, rel, version, time.Now().UTC().Format(time.RFC3339), int(took.Seconds()))
	if err := os.WriteFile(filepath.Join(tmp, stampName), []byte(stamp), 0o644); err != nil {
		return "", err
	}
	final := filepath.Join(base, suite)
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	done = true
	progressf("[%s] root ready in %s: OTP %s (erlang-base %s) at %s", suite, took, version, pkg, final)
	return final, nil
}

// Env is the environment for commands run inside a root, and for the nodes
// the tests start: nothing from the test's own environment leaks in
// (ERL_FLAGS and friends would change how erl starts).
func Env() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"LANG=C.UTF-8",
		"TERM=dumb",
	}
}

// verifyRoot runs the root's erl as a human would check it and returns
// the OTP major it reports, the full OTP version and erlang-base's version.
func verifyRoot(ctx context.Context, root string) (rel, version, pkg string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chroot", root, "erl", "-noshell", "-eval",
		`io:format("~s~n",[erlang:system_info(otp_release)]),halt().`)
	cmd.Env = Env()
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", "", "", fmt.Errorf("chroot %s erl: %v: %s", root, err, bytes.TrimSpace(out))
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return "", "", "", fmt.Errorf("chroot %s erl printed nothing", root)
	}
	rel = lines[len(lines)-1]
	v, _ := os.ReadFile(filepath.Join(root, "usr/lib/erlang/releases", rel, "OTP_VERSION"))
	version = strings.TrimSpace(string(v))
	q := exec.CommandContext(ctx, "chroot", root, "dpkg-query", "-W", "-f=${Version}", "erlang-base")
	q.Env = Env()
	p, _ := q.Output()
	return rel, version, strings.TrimSpace(string(p)), nil
}

// cleanAptCaches drops downloaded .debs and package lists, which the
// nodes never need, so the cached root stays small.
func cleanAptCaches(root string) {
	for _, pat := range []string{"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*"} {
		m, _ := filepath.Glob(filepath.Join(root, pat))
		for _, f := range m {
			_ = os.Remove(f)
		}
	}
}

// runStreamed runs cmd, copying each output line to stderr as a progress
// line, with a heartbeat so a quiet phase does not look like a hang.
//
// If the test binary is killed, cmd gets SIGKILL (Pdeathsig), but its own
// children (dpkg, wget, ...) may run on for a moment inside the build
// directory. They all inherit the lock file as an extra descriptor, and a
// flock lasts until its last descriptor closes, so the next builder waits
// for the whole tree to be gone before it deletes the leftovers.
func runStreamed(ctx context.Context, suite string, lock *os.File, cmd *exec.Cmd) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.ExtraFiles = []*os.File{lock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return err
	}
	w.Close()

	var wg sync.WaitGroup
	wg.Add(1)
	var last []string
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			progressf("[%s] %s", suite, line)
			last = append(last, line)
			if len(last) > 20 {
				last = last[1:]
			}
		}
		r.Close()
	}()
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				progressf("[%s] still working (%s elapsed)", suite, time.Since(start).Round(time.Second))
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	err = cmd.Wait()
	close(stop)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(cmd.Path), err, strings.Join(last, "\n"))
	}
	return nil
}

// logTail returns the end of a log file, for error messages.
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return "\n--- " + path + " (tail) ---\n" + strings.Join(lines, "\n")
}
