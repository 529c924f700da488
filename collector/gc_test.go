package collector

import (
	"math/big"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestGC(t *testing.T) {
	huge, _ := new(big.Int).SetString("36893488147419103232", 10) // 2^65 words
	expectMetrics(t, gcCollector{}, map[string]etf.Term{
		"erlang:statistics(garbage_collection)": etf.Tuple{237, huge, 0},
		"erlang:system_info(wordsize)":          8,
	}, `
# HELP beam_gc_reclaimed_bytes_total Bytes reclaimed by garbage collection since the node started (statistics(garbage_collection)). Up to one slow tier old.
# TYPE beam_gc_reclaimed_bytes_total counter
beam_gc_reclaimed_bytes_total 2.9514790517935283e+20
# HELP beam_gc_runs_total Garbage collections since the node started (statistics(garbage_collection)). Up to one slow tier old.
# TYPE beam_gc_runs_total counter
beam_gc_runs_total 237
`)
	expectError(t, gcCollector{}, map[string]etf.Term{
		"erlang:statistics(garbage_collection)": etf.Tuple{237, 1},
		"erlang:system_info(wordsize)":          8,
	})
}
