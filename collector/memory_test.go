package collector

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// Captured from OTP 25: erlang:memory().
var memoryReply = props("total", 18775506, "processes", 3810104, "processes_used", 3809072,
	"system", 14965402, "atom", 270505, "atom_used", 262510, "binary", 670584, "code", 5242214, "ets", 349656)

func TestMemory(t *testing.T) {
	expectMetrics(t, memoryCollector{}, map[string]etf.Term{"erlang:memory()": memoryReply}, `
# HELP beam_memory_bytes Memory allocated by the emulator, by kind (erlang:memory/0). The kinds partition the total: sum them for erlang:memory(total). Up to one fast tier old.
# TYPE beam_memory_bytes gauge
beam_memory_bytes{kind="atom"} 270505
beam_memory_bytes{kind="binary"} 670584
beam_memory_bytes{kind="code"} 5.242214e+06
beam_memory_bytes{kind="ets"} 349656
beam_memory_bytes{kind="other"} 8.432443e+06
beam_memory_bytes{kind="processes"} 3.810104e+06
# HELP beam_memory_used_bytes The part of beam_memory_bytes of the same kind that is in use (erlang:memory/0: processes_used, atom_used); the rest is allocated and free. Up to one fast tier old.
# TYPE beam_memory_used_bytes gauge
beam_memory_used_bytes{kind="atom"} 262510
beam_memory_used_bytes{kind="processes"} 3.809072e+06
`)
}

func TestMemoryMalformed(t *testing.T) {
	for name, reply := range map[string]etf.Term{
		"not a list":        etf.Atom("undefined"),
		"missing atom_used": props("total", 10, "processes", 1, "processes_used", 1, "atom", 1, "binary", 1, "code", 1, "ets", 1),
		"negative used":     props("total", 10, "processes", 1, "processes_used", -1, "atom", 1, "atom_used", 1, "binary", 1, "code", 1, "ets", 1),
		"missing total":     props("processes", 1, "atom", 1, "binary", 1, "code", 1, "ets", 1),
		"negative value":    props("total", 10, "processes", -1, "atom", 1, "binary", 1, "code", 1, "ets", 1),
		"parts over total":  props("total", 10, "processes", 10, "atom", 1, "binary", 1, "code", 1, "ets", 1),
		"wrong element":     etf.List{etf.Atom("total")},
		"string value":      props("total", "10", "processes", 1, "atom", 1, "binary", 1, "code", 1, "ets", 1),
		"non-atom key":      etf.List{etf.Tuple{1, 2}},
		"nested too deeply": etf.List{etf.Tuple{etf.Atom("total"), etf.List{etf.List{etf.List{}}}}},
	} {
		t.Run(name, func(t *testing.T) {
			expectError(t, memoryCollector{}, map[string]etf.Term{"erlang:memory()": reply})
		})
	}
}
