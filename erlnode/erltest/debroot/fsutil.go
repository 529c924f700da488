// File-system helpers for roots: flock, removing half-built roots safely, small file copies.

package debroot

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// lockFile takes an exclusive flock on path, creating it if needed. The
// kernel drops the lock when the last descriptor of the open file is
// closed, so a killed test binary never leaves a stale lock behind.
// waiting is called once if another process holds the lock.
func lockFile(path string, waiting func()) (f *os.File, unlock func(), err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if waiting != nil {
			waiting()
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("flock %s: %w", path, err)
		}
	}
	return f, func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// removeRoot deletes a (possibly half-built) root. debootstrap mounts proc,
// sys and sometimes bind-mounts /dev entries inside the target and only
// unmounts them on a clean exit; after a SIGKILL they stay mounted, and a
// plain recursive delete would descend into the host's /dev or /proc.
// So unmount everything below dir first, then delete without crossing
// file-system boundaries.
func removeRoot(dir string) error {
	dir = filepath.Clean(dir)
	if dir == "/" || dir == "." || !filepath.IsAbs(dir) {
		return fmt.Errorf("refusing to remove %q", dir)
	}
	for _, mp := range mountsBelow(dir) {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting %s: %w", mp, err)
		}
	}
	out, err := exec.Command("rm", "-rf", "--one-file-system", "--", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rm -rf %s: %v: %s", dir, err, bytes.TrimSpace(out))
	}
	return nil
}

// mountsBelow lists mount points strictly inside dir, deepest first.
func mountsBelow(dir string) []string {
	var out []string
	for _, mp := range mountPoints() {
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// isMountPoint reports whether something is mounted on dir.
func isMountPoint(dir string) bool {
	return slices.Contains(mountPoints(), filepath.Clean(dir))
}

// mountPoints lists this mount namespace's mount points, from /proc/self/mountinfo.
func mountPoints() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeMountinfo(fields[4]))
	}
	return out
}

// unescapeMountinfo undoes the \NNN octal escapes of /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// syncFile makes dst hold src's content, replacing dst atomically (and any
// symlink there) so processes reading it never see a partial file.
// It does nothing when the content is already the same.
func syncFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(dst); err == nil && fi.Mode().IsRegular() {
		if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, data) {
			return nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".erltest-")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), dst); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
