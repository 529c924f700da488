// Live tests of the mnesia collector: a node under write load, and one without Mnesia.

package collector

import (
	"testing"
)

func TestLiveMnesia(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		// A ram schema (no -mnesia dir on disc) and one table under a
		// steady stream of write transactions.
		node.Eval(t, `ok = mnesia:start(),
			{atomic, ok} = mnesia:create_table(live_orders, [{attributes, [id, body]}]),
			ok = mnesia:wait_for_tables([live_orders], 10000),
			spawn(fun F() ->
				[{atomic, ok} = mnesia:transaction(fun() -> mnesia:write({live_orders, I, lists:duplicate(100, I)}) end)
				 || I <- lists:seq(1, 200)],
				timer:sleep(10), F() end), ok.`)
		l := connect(t, node, liveOptions{collectors: []string{"mnesia"}})
		fams := l.scrape(t)
		if v := value(t, fams, "beam_scrape_collector_success", "collector", "mnesia"); v != 1 {
			t.Fatalf("the mnesia collector failed on a node running Mnesia")
		}
		before := value(t, fams, "beam_mnesia_transactions_total", "outcome", "committed")
		waitFor(t, "committed transactions to rise and live_orders to be ranked", func() bool {
			fams = l.scrape(t)
			committed, _ := lookup(fams, "beam_mnesia_transactions_total", "outcome", "committed")
			records, ranked := lookup(fams, "beam_mnesia_table_records", "table", "live_orders", "storage", "ram_copies")
			return committed > before && ranked && records == 200
		})
		if v := value(t, fams, "beam_mnesia_table_memory_bytes", "table", "live_orders"); v < 200*100 {
			t.Errorf("live_orders holds 200 records of 100 integers in %v bytes", v)
		}
		for _, name := range []string{"beam_mnesia_held_locks", "beam_mnesia_lock_queue_length",
			"beam_mnesia_transaction_restarts_total", "beam_mnesia_transaction_log_writes_total"} {
			value(t, fams, name)
		}
		lintFamilies(t, fams)
		if v := value(t, fams, "beam_mnesia_transactions_total", "outcome", "failed"); v != 0 {
			t.Errorf("failed transactions = %v, none failed", v)
		}
	})
}

func TestLiveMnesiaAbsent(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{collectors: []string{"mnesia"}})
		fams := l.scrape(t)
		if v := value(t, fams, "beam_scrape_collector_success", "collector", "mnesia"); v != 0 {
			t.Errorf("the mnesia collector reports success %v on a node without Mnesia", v)
		}
		for name := range fams {
			if len(name) > 12 && name[:12] == "beam_mnesia_" {
				t.Errorf("a node without Mnesia exports %s", name)
			}
		}
		l.scrape(t)
		if got := node.Eval(t, `{lists:keymember(mnesia, 1, application:which_applications()), whereis(mnesia_sup), code:is_loaded(mnesia)}.`); got != "{false,undefined,false}" {
			t.Errorf("after two scrapes, {running, mnesia_sup, loaded} = %s: the exporter touched Mnesia", got)
		}
	})
}
