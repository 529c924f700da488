package collector

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// Captured from OTP 25 (two schedulers) with a few sockets and spawned ports
// open: statistics(active_tasks_all) (ergo decodes the small integers as a
// string), socket:number_of() and the probe's port_counts(20).
var portsReplies = map[string]etf.Term{
	"erlang:system_info(schedulers)":      2,
	"erlang:statistics(active_tasks_all)": string([]byte{2, 0, 0, 1}),
	"socket:number_of()":                  1,
	"probe:port_counts(20)": etf.Tuple{etf.Atom("ok"), etf.List{
		etf.Tuple{[]byte("tcp_inet"), 10},
		etf.Tuple{[]byte("udp_inet"), 5},
		etf.Tuple{[]byte("spawn"), 3},
		etf.Tuple{[]byte("forker"), 1},
		etf.Tuple{[]byte("0/1"), 1},
	}},
}

func TestPorts(t *testing.T) {
	expectMetrics(t, portsCollector{}, portsReplies, `
# HELP beam_active_tasks Processes and ports running or ready to run, by scheduler type (statistics(active_tasks_all)): the run queues plus what the schedulers run at that moment; their sum is statistics(total_active_tasks_all). Up to one slow tier old.
# TYPE beam_active_tasks gauge
beam_active_tasks{type="dirty_cpu"} 0
beam_active_tasks{type="dirty_io"} 1
beam_active_tasks{type="normal"} 2
# HELP beam_ports_by_driver Open ports by driver (erlang:port_info(P, name): tcp_inet, udp_inet, ...); ports with an OS process (open_port spawn) count as spawn, drivers beyond --collector.ports.top-n as other. Their sum is the port count at the scan. Up to one slow tier old.
# TYPE beam_ports_by_driver gauge
beam_ports_by_driver{driver="0/1"} 1
beam_ports_by_driver{driver="forker"} 1
beam_ports_by_driver{driver="spawn"} 3
beam_ports_by_driver{driver="tcp_inet"} 10
beam_ports_by_driver{driver="udp_inet"} 5
# HELP beam_sockets Sockets of the socket module (socket:number_of/0); gen_tcp and gen_udp sockets are ports, unless they use inet_backend socket. Up to one slow tier old.
# TYPE beam_sockets gauge
beam_sockets 1
`)
}

func TestPortsMalformed(t *testing.T) {
	bad := func(key string, v etf.Term) map[string]etf.Term {
		r := map[string]etf.Term{}
		for k, x := range portsReplies {
			r[k] = x
		}
		r[key] = v
		return r
	}
	for name, replies := range map[string]map[string]etf.Term{
		"tasks not a list":  bad("erlang:statistics(active_tasks_all)", 3),
		"tasks too short":   bad("erlang:statistics(active_tasks_all)", string([]byte{1})),
		"sockets negative":  bad("socket:number_of()", -1),
		"driver twice":      bad("probe:port_counts(20)", etf.Tuple{etf.Atom("ok"), etf.List{etf.Tuple{[]byte("a"), 1}, etf.Tuple{[]byte("a"), 2}}}),
		"probe refused":     bad("probe:port_counts(20)", etf.Tuple{etf.Atom("error"), etf.Atom("deadline")}),
		"count not integer": bad("probe:port_counts(20)", etf.Tuple{etf.Atom("ok"), etf.List{etf.Tuple{[]byte("a"), []byte("1")}}}),
	} {
		t.Run(name, func(t *testing.T) { expectError(t, portsCollector{}, replies) })
	}
}
