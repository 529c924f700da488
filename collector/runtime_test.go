package collector

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestRuntime(t *testing.T) {
	replies := map[string]etf.Term{
		"erlang:statistics(context_switches)": etf.Tuple{1927, 0},
		"erlang:statistics(io)":               etf.Tuple{etf.Tuple{etf.Atom("input"), 13105}, etf.Tuple{etf.Atom("output"), 1710}},
		"erlang:statistics(runtime)":          etf.Tuple{224, 3},
	}
	expectMetrics(t, runtimeCollector{}, replies, `
# HELP beam_context_switches_total Process context switches since the node started (statistics(context_switches)). Up to one slow tier old.
# TYPE beam_context_switches_total counter
beam_context_switches_total 1927
# HELP beam_cpu_seconds_total CPU time of all the emulator's threads since the node started (statistics(runtime)). Up to one slow tier old.
# TYPE beam_cpu_seconds_total counter
beam_cpu_seconds_total 0.224
# HELP beam_io_received_bytes_total Bytes received through ports since the node started (statistics(io)). Up to one slow tier old.
# TYPE beam_io_received_bytes_total counter
beam_io_received_bytes_total 13105
# HELP beam_io_sent_bytes_total Bytes sent through ports since the node started (statistics(io)). Up to one slow tier old.
# TYPE beam_io_sent_bytes_total counter
beam_io_sent_bytes_total 1710
`)
	swapped := withReplies(replies, "erlang:statistics(io)",
		etf.Tuple{etf.Tuple{etf.Atom("output"), 1}, etf.Tuple{etf.Atom("input"), 2}})
	expectError(t, runtimeCollector{}, swapped)
}
