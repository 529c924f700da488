package collector

import (
	"math/big"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestGC(t *testing.T) {
	// ERTS sums the words reclaimed in a Uint64 (ErtsGCInfo), which the
	// node sends as a bignum beyond 2^60.
	huge, _ := new(big.Int).SetString("18446744073709551615", 10) // 2^64 - 1 words
	expectMetrics(t, gcCollector{}, map[string]etf.Term{
		"erlang:statistics(garbage_collection)": etf.Tuple{237, huge, 0},
		"erlang:system_info(wordsize)":          8,
	}, `
# HELP beam_gc_reclaimed_bytes_total Bytes reclaimed by garbage collection since the node started (statistics(garbage_collection)). Up to one slow tier old.
# TYPE beam_gc_reclaimed_bytes_total counter
beam_gc_reclaimed_bytes_total 1.4757395258967641e+20
# HELP beam_gc_runs_total Garbage collections since the node started (statistics(garbage_collection)). Up to one slow tier old.
# TYPE beam_gc_runs_total counter
beam_gc_runs_total 237
`)
	for name, replies := range map[string]map[string]etf.Term{
		"a two-tuple": {
			"erlang:statistics(garbage_collection)": etf.Tuple{237, 1},
			"erlang:system_info(wordsize)":          8,
		},
		"words beyond 64 bits": {
			"erlang:statistics(garbage_collection)": etf.Tuple{237, new(big.Int).Lsh(big.NewInt(1), 65), 0},
			"erlang:system_info(wordsize)":          8,
		},
		"a word of no bytes": {
			"erlang:statistics(garbage_collection)": etf.Tuple{237, 1000, 0},
			"erlang:system_info(wordsize)":          0,
		},
	} {
		t.Run(name, func(t *testing.T) { expectError(t, gcCollector{}, replies) })
	}
}
