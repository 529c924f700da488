// The beam_exporter binary against a benchmark node: what a scrape costs it.

package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// binaryResult is what the exporter process itself costs.
type binaryResult struct {
	cached                   []time.Duration // scrapes served from cache
	cpuCached, cpuRefreshing time.Duration   // exporter CPU per scrape
	rssBytes, hwmBytes       float64         // after all scrapes
	series, beamSeries       int             // with the default flags
	promtool                 string          // promtool check metrics output, "" when silent
}

// measureBinary runs the exporter twice: with the default flags, for
// scrapes served from cache, series and RSS; then with tiers of 1 ms, so
// that every scrape refreshes, for its CPU per refreshing scrape. Only the
// scrape deadline is raised, so that a refresh of a 1M-process node is
// measured rather than cut off.
func measureBinary(ctx context.Context, cfg Config, n *node, runs int) (binaryResult, error) {
	var out binaryResult
	p, url, err := startExporter(n, cfg.Exporter, "--web.default-scrape-timeout=5m")
	if err != nil {
		return out, err
	}
	defer stopExporter(p)
	body, err := waitUp(ctx, url)
	if err != nil {
		return out, err
	}
	cpu0 := processCPU(p.Process.Pid)
	const cached = 200
	for range cached {
		start := time.Now()
		if body, err = get(url); err != nil {
			return out, err
		}
		out.cached = append(out.cached, time.Since(start))
	}
	out.cpuCached = (processCPU(p.Process.Pid) - cpu0) / cached
	out.rssBytes, out.hwmBytes = processMemory(p.Process.Pid)
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		out.series++
		if strings.HasPrefix(line, "beam_") {
			out.beamSeries++
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		msg, _ := cmd.CombinedOutput()
		out.promtool = strings.TrimSpace(string(msg))
	} else {
		out.promtool = "promtool not installed"
	}
	stopExporter(p)

	p, url, err = startExporter(n, cfg.Exporter, "--web.default-scrape-timeout=5m", "--collector.tier.fast=1ms", "--collector.tier.slow=1ms")
	if err != nil {
		return out, err
	}
	defer stopExporter(p)
	if _, err := waitUp(ctx, url); err != nil {
		return out, err
	}
	cpu0 = processCPU(p.Process.Pid)
	for range runs {
		if _, err := get(url); err != nil {
			return out, err
		}
	}
	out.cpuRefreshing = (processCPU(p.Process.Pid) - cpu0) / time.Duration(runs)
	rss, hwm := processMemory(p.Process.Pid)
	out.rssBytes, out.hwmBytes = max(out.rssBytes, rss), max(out.hwmBytes, hwm)
	return out, nil
}

func startExporter(n *node, binary string, args ...string) (*exec.Cmd, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := l.Addr().String()
	l.Close()
	_, host, _ := strings.Cut(n.name, "@")
	cmd := exec.Command(binary, append([]string{
		"--erlang.node=" + n.name, "--web.listen-address=" + addr, "--log.level=error",
		"--erlang.local-name=beam_bench_binary_" + randomHex(4) + "@" + host,
	}, args...)...)
	cmd.Env = append(os.Environ(), "BEAM_EXPORTER_ERLANG_COOKIE="+n.cookie)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting %s: %w", binary, err)
	}
	return cmd, "http://" + addr + "/metrics", nil
}

func stopExporter(p *exec.Cmd) {
	if p.ProcessState != nil {
		return
	}
	p.Process.Signal(syscall.SIGTERM)
	p.Wait()
}

// waitUp scrapes until the exporter reports beam_up 1; that first scrape
// refreshes every collector.
func waitUp(ctx context.Context, url string) ([]byte, error) {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		body, err := get(url)
		if err == nil && bytes.Contains(body, []byte("\nbeam_up 1\n")) {
			return body, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("exporter at %s never reported beam_up 1 (%v)", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	return body, err
}

// processCPU is a process's user plus system time, from /proc (10 ms ticks).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of /proc/PID/stat,
// counting fields after the command name, which may hold spaces.
func parseStatCPU(stat string) time.Duration {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(u+s) * time.Second / ticks
}

// processMemory is a process's resident and peak resident memory.
func processMemory(pid int) (rss, hwm float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	return parseStatusMemory(f)
}

func parseStatusMemory(r io.Reader) (rss, hwm float64) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		kb, _ := strconv.ParseFloat(f[0], 64)
		if k == "VmRSS" {
			rss = kb * 1024
		} else {
			hwm = kb * 1024
		}
	}
	return rss, hwm
}
