package collector

import (
	"fmt"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func msaccThread(typ string, id int, counters map[string]int) etf.Map {
	c := etf.Map{}
	for k, v := range counters {
		c[etf.Atom(k)] = v
	}
	return etf.Map{etf.Atom("type"): etf.Atom(typ), etf.Atom("id"): id, etf.Atom("counters"): c}
}

func TestMSAcc(t *testing.T) {
	replies := map[string]etf.Term{
		"erlang:statistics(microstate_accounting)": etf.List{
			msaccThread("scheduler", 1, map[string]int{"gc": 1000, "sleep": 3000}),
			msaccThread("scheduler", 2, map[string]int{"gc": 500, "sleep": 500}),
			msaccThread("aux", 1, map[string]int{"aux": 250}),
		},
		"erlang:convert_time_unit(1,second,perf_counter)": 1000,
	}
	expectMetrics(t, msaccCollector{}, replies, `
# HELP beam_msacc_seconds_total Time the emulator's threads of a type spent in a state, summed over the threads of that type (microstate accounting; the gc state is the honest source of GC time). Counts from when the exporter's session switched accounting on. Up to one slow tier old.
# TYPE beam_msacc_seconds_total counter
beam_msacc_seconds_total{state="aux",thread_type="aux"} 0.25
beam_msacc_seconds_total{state="gc",thread_type="scheduler"} 1.5
beam_msacc_seconds_total{state="sleep",thread_type="scheduler"} 3.5
`)
	manyStates := map[string]int{}
	for i := range maxMSAccLabels + 1 {
		manyStates[fmt.Sprintf("state_%d", i)] = 1
	}
	var manyTypes etf.List
	for i := range maxMSAccLabels + 1 {
		manyTypes = append(manyTypes, msaccThread(fmt.Sprintf("type_%d", i), 1, map[string]int{"gc": 1}))
	}
	for name, reply := range map[string]etf.Term{
		"off":            etf.Atom("undefined"),
		"33 states":      etf.List{msaccThread("scheduler", 1, manyStates)},
		"33 types":       manyTypes,
		"missing type":   etf.List{etf.Map{etf.Atom("counters"): etf.Map{}}},
		"counter string": etf.List{msaccThread("aux", 1, nil), etf.Map{etf.Atom("type"): etf.Atom("aux"), etf.Atom("counters"): etf.Map{etf.Atom("aux"): "x"}}},
	} {
		t.Run(name, func(t *testing.T) {
			expectError(t, msaccCollector{}, withReplies(replies, "erlang:statistics(microstate_accounting)", reply))
		})
	}
}
