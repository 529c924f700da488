package collector

import (
	"errors"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// Captured from OTP 25 after three write transactions on a ram schema:
// application:which_applications() and the value of mnesiaExpr.
var (
	mnesiaApps = etf.List{
		etf.Tuple{etf.Atom("mnesia"), "MNESIA  CXC 138 12", "4.21.3"},
		etf.Tuple{etf.Atom("stdlib"), "ERTS  CXC 138 10", "4.2"},
		etf.Tuple{etf.Atom("kernel"), "ERTS  CXC 138 10", "8.5.3"},
	}
	mnesiaValue = etf.Tuple{8, 0, 0, 6, 0, 0, 0, etf.List{
		etf.Tuple{etf.Atom("live_orders"), etf.Atom("ram_copies"), 3, 329},
		etf.Tuple{etf.Atom("schema"), etf.Atom("ram_copies"), 2, 541},
	}}
)

func mnesiaReplies(apps, value etf.Term) map[string]etf.Term {
	return map[string]etf.Term{
		"application:which_applications()":                              apps,
		callKey("erl_eval", "expr", []etf.Term{mnesiaExpr, etf.List{}}): etf.Tuple{etf.Atom("value"), value, etf.List{}},
	}
}

func TestMnesia(t *testing.T) {
	expectMetrics(t, mnesiaCollector{}, mnesiaReplies(mnesiaApps, mnesiaValue), `
# HELP beam_mnesia_table_memory_bytes Memory of a local Mnesia table among the largest (mnesia:table_info(T, memory): words times the word size for ram and disc copies, the dets file's bytes for disc_only copies). Up to one slow tier old.
# TYPE beam_mnesia_table_memory_bytes gauge
beam_mnesia_table_memory_bytes{storage="ram_copies",table="live_orders"} 2632
beam_mnesia_table_memory_bytes{storage="ram_copies",table="schema"} 4328
# HELP beam_mnesia_table_records Records in a local Mnesia table among the largest by memory (mnesia:table_info(T, size); same tables as beam_mnesia_table_memory_bytes). Up to one slow tier old.
# TYPE beam_mnesia_table_records gauge
beam_mnesia_table_records{storage="ram_copies",table="live_orders"} 3
beam_mnesia_table_records{storage="ram_copies",table="schema"} 2
# HELP beam_mnesia_transactions_total Mnesia transactions coordinated by this node since Mnesia started, by outcome: committed or failed (mnesia:system_info(transaction_commits | transaction_failures)). Up to one slow tier old.
# TYPE beam_mnesia_transactions_total counter
beam_mnesia_transactions_total{outcome="committed"} 6
beam_mnesia_transactions_total{outcome="failed"} 0
`, "beam_mnesia_table_memory_bytes", "beam_mnesia_table_records", "beam_mnesia_transactions_total")
}

func TestMnesiaRanking(t *testing.T) {
	v := etf.Tuple{8, 1, 2, 3, 4, 5, 6, etf.List{
		etf.Tuple{etf.Atom("small"), etf.Atom("ram_copies"), 1, 10},
		etf.Tuple{etf.Atom("on_disc"), etf.Atom("disc_only_copies"), 5, 5000},
		etf.Tuple{etf.Atom("big"), etf.Atom("disc_copies"), 100, 1000},
		etf.Tuple{etf.Atom("rocks"), etf.Atom("rocksdb_copies"), 100, 1e9},
		etf.Tuple{etf.Atom("loading"), etf.Atom("ram_copies"), etf.Atom("undefined"), 1},
	}}
	r, err := parseMnesia(v, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.tables) != 2 || r.tables[0].name != "big" || r.tables[0].memory != 8000 || r.tables[1].name != "on_disc" || r.tables[1].memory != 5000 {
		t.Errorf("top 2 = %+v, want big (8000 bytes) then on_disc (5000 bytes)", r.tables)
	}
	if r.heldLocks != 1 || r.lockQueue != 2 || r.commits != 3 || r.failures != 4 || r.restarts != 5 || r.logWrites != 6 {
		t.Errorf("figures = %+v", r)
	}
}

func TestMnesiaNotRunning(t *testing.T) {
	a := &collectorAdapter{c: mnesiaCollector{}, node: &fakeNode{replies: mnesiaReplies(mnesiaApps[1:], nil)}}
	if n := len(collectAll(a)); n != 0 {
		t.Errorf("%d metrics from a node without Mnesia", n)
	}
	if !errors.Is(a.err, errUnavailable) {
		t.Errorf("error %v, want errUnavailable", a.err)
	}
}

func TestMnesiaMalformed(t *testing.T) {
	for name, value := range map[string]etf.Term{
		"not a tuple":       etf.List{},
		"short tuple":       etf.Tuple{8, 0, 0},
		"odd word size":     etf.Tuple{3, 0, 0, 0, 0, 0, 0, etf.List{}},
		"negative commits":  etf.Tuple{8, 0, 0, -1, 0, 0, 0, etf.List{}},
		"tables not a list": etf.Tuple{8, 0, 0, 0, 0, 0, 0, etf.Atom("x")},
		"table name binary": etf.Tuple{8, 0, 0, 0, 0, 0, 0, etf.List{etf.Tuple{[]byte("t"), etf.Atom("ram_copies"), 1, 1}}},
		"table twice": etf.Tuple{8, 0, 0, 0, 0, 0, 0, etf.List{
			etf.Tuple{etf.Atom("t"), etf.Atom("ram_copies"), 1, 1}, etf.Tuple{etf.Atom("t"), etf.Atom("disc_copies"), 2, 2}}},
	} {
		t.Run(name, func(t *testing.T) {
			expectError(t, mnesiaCollector{}, mnesiaReplies(mnesiaApps, value))
		})
	}
	expectError(t, mnesiaCollector{}, mnesiaReplies(etf.Atom("x"), mnesiaValue))
}
