package collector

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
)

var schedulerInfo = map[string]etf.Term{
	"erlang:system_info(schedulers)":                  2,
	"erlang:system_info(schedulers_online)":           2,
	"erlang:system_info(dirty_cpu_schedulers)":        2,
	"erlang:system_info(dirty_cpu_schedulers_online)": 1,
	"erlang:system_info(dirty_io_schedulers)":         10,
}

func withReplies(base map[string]etf.Term, kv ...any) map[string]etf.Term {
	out := map[string]etf.Term{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestRunQueue(t *testing.T) {
	// A list of small integers arrives from ergo as a Go string.
	replies := withReplies(schedulerInfo, "erlang:statistics(run_queue_lengths_all)", string([]byte{3, 4, 1, 0}))
	expectMetrics(t, runQueueCollector{}, replies, `
# HELP beam_run_queue_length Processes and ports ready to run but waiting, summed over the run queues of a scheduler type (statistics(run_queue_lengths_all)). Up to one fast tier old.
# TYPE beam_run_queue_length gauge
beam_run_queue_length{type="dirty_cpu"} 1
beam_run_queue_length{type="dirty_io"} 0
beam_run_queue_length{type="normal"} 7
# HELP beam_schedulers Schedulers online, by type (system_info).
# TYPE beam_schedulers gauge
beam_schedulers{type="dirty_cpu"} 1
beam_schedulers{type="dirty_io"} 10
beam_schedulers{type="normal"} 2
`)
}

func TestRunQueueMalformed(t *testing.T) {
	for name, reply := range map[string]etf.Term{
		"too few queues": etf.List{1, 2},
		"negative":       etf.List{1, -2, 0, 0},
		"atom":           etf.Atom("undefined"),
	} {
		t.Run(name, func(t *testing.T) {
			expectError(t, runQueueCollector{}, withReplies(schedulerInfo, "erlang:statistics(run_queue_lengths_all)", reply))
		})
	}
}

// The counts size the collectors' slices and label the series: one beyond
// ERTS's limit, or more online than exist, is refused, not exported.
func TestSchedulerCountsMalformed(t *testing.T) {
	queues := string([]byte{3, 4, 1, 0})
	for name, kv := range map[string][]any{
		"beyond the limit":             {"erlang:system_info(schedulers_online)", uint64(1<<64 - 1)},
		"1025 dirty io schedulers":     {"erlang:system_info(dirty_io_schedulers)", 1025},
		"more online than exist":       {"erlang:system_info(schedulers_online)", 3},
		"more dirty online than exist": {"erlang:system_info(dirty_cpu_schedulers_online)", 3},
	} {
		t.Run(name, func(t *testing.T) {
			replies := withReplies(schedulerInfo, append([]any{"erlang:statistics(run_queue_lengths_all)", queues}, kv...)...)
			expectError(t, runQueueCollector{}, replies)
		})
	}
}
