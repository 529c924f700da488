package collector

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestETS(t *testing.T) {
	reply := etf.Tuple{etf.Atom("ok"), etf.List{
		etf.Tuple{[]byte("code_server"), 113152, 361},
		etf.Tuple{[]byte("big_table"), 9000000, 100000},
	}}
	expectMetrics(t, etsCollector{}, map[string]etf.Term{"probe:ets_tables(10)": reply}, `
# HELP beam_ets_table_memory_bytes Memory of an ETS table among the largest. table is a named table's name, or an unnamed table's owner; tables sharing a label are summed. Up to one slow tier old.
# TYPE beam_ets_table_memory_bytes gauge
beam_ets_table_memory_bytes{table="big_table"} 9e+06
beam_ets_table_memory_bytes{table="code_server"} 113152
# HELP beam_ets_table_objects Objects in an ETS table among the largest by memory (same tables as beam_ets_table_memory_bytes). Up to one slow tier old.
# TYPE beam_ets_table_objects gauge
beam_ets_table_objects{table="big_table"} 100000
beam_ets_table_objects{table="code_server"} 361
`)
	expectError(t, etsCollector{}, map[string]etf.Term{"probe:ets_tables(10)": etf.Tuple{etf.Atom("ok"), etf.List{etf.Tuple{[]byte("t"), 1}}}})
	// The probe sums tables sharing a label; two entries of one label would
	// be one series twice, which the registry refuses after Update succeeded.
	expectError(t, etsCollector{}, map[string]etf.Term{"probe:ets_tables(10)": etf.Tuple{etf.Atom("ok"), etf.List{
		etf.Tuple{[]byte("t"), 10, 1}, etf.Tuple{[]byte("t"), 5, 1}}}})
}
