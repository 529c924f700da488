package collector

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestLocksStandardBuild(t *testing.T) {
	expectMetrics(t, locksCollector{}, map[string]etf.Term{"erlang:system_info(lock_counting)": etf.Atom("false")}, `
# HELP beam_lock_counting_available 1 when the emulator is a lock-counting build (system_info(lock_counting)) and lock counters are exported; 0 on standard builds, which have none.
# TYPE beam_lock_counting_available gauge
beam_lock_counting_available 0
`)
}

// The lock-counting branch decodes the probe's answer; no lock-counting
// emulator is packaged by Debian, so this shape is the probe's contract.
func TestLocksCountingBuild(t *testing.T) {
	replies := map[string]etf.Term{
		"erlang:system_info(lock_counting)": true, // ergo decodes the atom true as a Go bool
		"probe:lock_counters(10)": etf.Tuple{etf.Atom("ok"), etf.List{
			etf.Tuple{[]byte("run_queue"), 5000, 40},
		}},
	}
	expectMetrics(t, locksCollector{}, replies, `
# HELP beam_lock_acquisitions_total Times a lock of this class was acquired, summed over the class's instances (lock-counting builds only). Up to one slow tier old.
# TYPE beam_lock_acquisitions_total counter
beam_lock_acquisitions_total{lock="run_queue"} 5000
# HELP beam_lock_collisions_total Times a lock of this class was found taken, summed over the class's instances (lock-counting builds only). Up to one slow tier old.
# TYPE beam_lock_collisions_total counter
beam_lock_collisions_total{lock="run_queue"} 40
# HELP beam_lock_counting_available 1 when the emulator is a lock-counting build (system_info(lock_counting)) and lock counters are exported; 0 on standard builds, which have none.
# TYPE beam_lock_counting_available gauge
beam_lock_counting_available 1
`)
}

func TestLocksClassTwice(t *testing.T) {
	expectError(t, locksCollector{}, map[string]etf.Term{
		"erlang:system_info(lock_counting)": true,
		"probe:lock_counters(10)": etf.Tuple{etf.Atom("ok"), etf.List{
			etf.Tuple{[]byte("run_queue"), 5000, 40}, etf.Tuple{[]byte("run_queue"), 1, 0},
		}},
	})
}
