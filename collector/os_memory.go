// The os_memory collector: the node's resident memory as the OS sees it, read by the node itself.

package collector

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

func init() {
	register("os_memory", true, TierFast, func() Collector { return osMemoryCollector{} })
}

// procStatus is read by the node, so /proc/self is the node's emulator, not
// the exporter: in sidecar mode the exporter's own RSS says nothing of it.
const procStatus = "/proc/self/status"

var osResidentDesc = prometheus.NewDesc(namespace+"_os_resident_memory_bytes",
	"Resident memory of the node's OS process (VmRSS of /proc/self/status, read by the node with file:read_file/1). "+
		"Absent where the node cannot read it (not Linux, no /proc). Compare with sum(beam_memory_bytes). Up to one fast tier old.",
	nil, nil)

type osMemoryCollector struct{}

func (osMemoryCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	reply, err := node.Call(ctx, "file", "read_file", procStatus)
	if err != nil {
		return fmt.Errorf("reading %s: %w", procStatus, err)
	}
	rss, ok, err := parseProcStatusReply(reply)
	if err != nil {
		return fmt.Errorf("reading %s: %w", procStatus, err)
	}
	if ok {
		ch <- prometheus.MustNewConstMetric(osResidentDesc, prometheus.GaugeValue, rss)
	}
	return nil
}

// parseProcStatusReply decodes file:read_file/1's answer: {ok, Binary} with
// a VmRSS line, or {error, Reason} where the file does not exist or may not
// be read, which is not a failure but a node without the figure (ok false).
func parseProcStatusReply(reply etf.Term) (rss float64, ok bool, err error) {
	tup, err := erlnode.Tuple(reply, 2)
	if err != nil {
		return 0, false, err
	}
	tag, err := erlnode.Atom(tup[0])
	if err != nil {
		return 0, false, err
	}
	switch tag {
	case "error":
		return 0, false, nil
	case "ok":
		content, isBinary := tup[1].([]byte)
		if !isBinary {
			return 0, false, fmt.Errorf("want {ok, Binary}, got a %T", tup[1])
		}
		return parseVmRSS(content)
	}
	return 0, false, fmt.Errorf("want {ok, _} or {error, _}, got the tag %q", tag)
}

// parseVmRSS finds "VmRSS:   40764 kB" in /proc/<pid>/status and returns
// it in bytes; ok is false when the file has no such line.
func parseVmRSS(status []byte) (float64, bool, error) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		rest, found := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !found {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) != 2 || string(fields[1]) != "kB" {
			return 0, false, fmt.Errorf("unexpected VmRSS line %q", line)
		}
		kb, err := strconv.ParseUint(string(fields[0]), 10, 52)
		if err != nil {
			return 0, false, fmt.Errorf("VmRSS: %w", err)
		}
		return float64(kb) * 1024, true, nil
	}
	return 0, false, nil
}
