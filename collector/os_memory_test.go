package collector

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// Captured from OTP 25 on Linux: the head of file:read_file("/proc/self/status").
const procStatusCaptured = "Name:\tbeam.smp\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t18654\nPid:\t18654\nPPid:\t18652\n" +
	"VmPeak:\t 2105644 kB\nVmSize:\t 2105136 kB\nVmLck:\t       0 kB\nVmPin:\t       0 kB\nVmHWM:\t   39788 kB\n" +
	"VmRSS:\t   39788 kB\nRssAnon:\t   23904 kB\nRssFile:\t    7148 kB\nRssShmem:\t    8736 kB\nVmData:\t   57216 kB\n"

const procStatusKey = "file:read_file(/proc/self/status)"

func TestOSMemory(t *testing.T) {
	expectMetrics(t, osMemoryCollector{}, map[string]etf.Term{
		procStatusKey: etf.Tuple{etf.Atom("ok"), []byte(procStatusCaptured)},
	}, `
# HELP beam_os_resident_memory_bytes Resident memory of the node's OS process (VmRSS of /proc/self/status, read by the node with file:read_file/1). Absent where the node cannot read it (not Linux, no /proc). Compare with sum(beam_memory_bytes). Up to one fast tier old.
# TYPE beam_os_resident_memory_bytes gauge
beam_os_resident_memory_bytes 4.0742912e+07
`)
	// Where the node has no /proc (another OS, a chroot), nothing and no error.
	for name, reply := range map[string]etf.Term{
		"no such file":  etf.Tuple{etf.Atom("error"), etf.Atom("enoent")},
		"not permitted": etf.Tuple{etf.Atom("error"), etf.Atom("eacces")},
		"no VmRSS line": etf.Tuple{etf.Atom("ok"), []byte("Name:\tbeam.smp\n")},
	} {
		t.Run(name, func(t *testing.T) {
			expectMetrics(t, osMemoryCollector{}, map[string]etf.Term{procStatusKey: reply}, "")
		})
	}
}

func TestOSMemoryMalformed(t *testing.T) {
	for name, reply := range map[string]etf.Term{
		"not a tuple":     etf.Atom("undefined"),
		"unknown tag":     etf.Tuple{etf.Atom("maybe"), []byte{}},
		"content a list":  etf.Tuple{etf.Atom("ok"), "VmRSS:\t1 kB\n"},
		"no unit":         etf.Tuple{etf.Atom("ok"), []byte("VmRSS:\t1\n")},
		"pages not kB":    etf.Tuple{etf.Atom("ok"), []byte("VmRSS:\t1 pages\n")},
		"negative":        etf.Tuple{etf.Atom("ok"), []byte("VmRSS:\t-1 kB\n")},
		"beyond float":    etf.Tuple{etf.Atom("ok"), []byte("VmRSS:\t99999999999999999999 kB\n")},
		"three-tuple":     etf.Tuple{etf.Atom("ok"), []byte{}, 1},
		"tag not an atom": etf.Tuple{"ok", []byte{}},
		"number not kB":   etf.Tuple{etf.Atom("ok"), []byte("VmRSS:\tabc kB\n")},
	} {
		t.Run(name, func(t *testing.T) {
			expectError(t, osMemoryCollector{}, map[string]etf.Term{procStatusKey: reply})
		})
	}
}
