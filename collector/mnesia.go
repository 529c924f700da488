// The mnesia collector: locks, transactions and the largest local tables, only where Mnesia runs.

package collector

import (
	"context"
	"fmt"
	"sort"

	"github.com/alecthomas/kingpin/v2"
	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

var mnesiaTopN = kingpin.Flag("collector.mnesia.top-n", "How many local Mnesia tables to report, largest by memory first (1-1000).").Default("10").Int()

func init() {
	register("mnesia", false, TierSlow, func() Collector { return mnesiaCollector{} }).validatedBy(validateMnesiaFlags)
}

var (
	mnesiaHeldLocksDesc = prometheus.NewDesc(namespace+"_mnesia_held_locks",
		"Locks held by Mnesia transactions on this node (length of mnesia:system_info(held_locks)). Up to one slow tier old.", nil, nil)
	mnesiaLockQueueDesc = prometheus.NewDesc(namespace+"_mnesia_lock_queue_length",
		"Lock requests waiting for a lock another transaction holds (length of mnesia:system_info(lock_queue)). Up to one slow tier old.", nil, nil)
	mnesiaTransactionsDesc = prometheus.NewDesc(namespace+"_mnesia_transactions_total",
		"Mnesia transactions coordinated by this node since Mnesia started, by outcome: committed or failed (mnesia:system_info(transaction_commits | transaction_failures)). Up to one slow tier old.",
		[]string{"outcome"}, nil)
	mnesiaRestartsDesc = prometheus.NewDesc(namespace+"_mnesia_transaction_restarts_total",
		"Times a Mnesia transaction was restarted, mostly to resolve a lock conflict (mnesia:system_info(transaction_restarts)). Up to one slow tier old.", nil, nil)
	mnesiaLogWritesDesc = prometheus.NewDesc(namespace+"_mnesia_transaction_log_writes_total",
		"Writes to the Mnesia transaction log since Mnesia started (mnesia:system_info(transaction_log_writes)). Up to one slow tier old.", nil, nil)
	mnesiaTableMemoryDesc = prometheus.NewDesc(namespace+"_mnesia_table_memory_bytes",
		"Memory of a local Mnesia table among the largest (mnesia:table_info(T, memory): words times the word size for ram and disc copies, the dets file's bytes for disc_only copies). Up to one slow tier old.",
		[]string{"table", "storage"}, nil)
	mnesiaTableRecordsDesc = prometheus.NewDesc(namespace+"_mnesia_table_records",
		"Records in a local Mnesia table among the largest by memory (mnesia:table_info(T, size); same tables as beam_mnesia_table_memory_bytes). Up to one slow tier old.",
		[]string{"table", "storage"}, nil)
)

// validateMnesiaFlags checks the collector's flags before anything starts.
func validateMnesiaFlags() error {
	if *mnesiaTopN < 1 || *mnesiaTopN > maxTopN {
		return fmt.Errorf("--collector.mnesia.top-n must be within 1-%d, got %d", maxTopN, *mnesiaTopN)
	}
	return nil
}

// mnesiaExpr reads everything in one call, once the application runs:
//
//	{erlang:system_info(wordsize),
//	 erlang:length(mnesia:system_info(held_locks)),
//	 erlang:length(mnesia:system_info(lock_queue)),
//	 mnesia:system_info(transaction_commits), ..._failures, ..._restarts, ..._log_writes,
//	 [{T, mnesia:table_info(T, storage_type), mnesia:table_info(T, size), mnesia:table_info(T, memory)}
//	  || T <- mnesia:system_info(local_tables)]}
//
// The lock lists are counted on the node; only their lengths travel.
var mnesiaExpr = func() expr {
	info := func(item string) expr { return eCall("mnesia", "system_info", eAtom(item)) }
	table := func(item string) expr { return eCall("mnesia", "table_info", eVar("T"), eAtom(item)) }
	return eTuple(
		eCall("erlang", "system_info", eAtom("wordsize")),
		eCall("erlang", "length", info("held_locks")),
		eCall("erlang", "length", info("lock_queue")),
		info("transaction_commits"), info("transaction_failures"),
		info("transaction_restarts"), info("transaction_log_writes"),
		eComprehension(eTuple(eVar("T"), table("storage_type"), table("size"), table("memory")),
			eVar("T"), info("local_tables")),
	)
}()

type mnesiaTable struct {
	name, storage   string
	records, memory float64
}

type mnesiaReport struct {
	heldLocks, lockQueue                   float64
	commits, failures, restarts, logWrites float64
	tables                                 []mnesiaTable // largest first, at most topN
}

type mnesiaCollector struct{}

func (mnesiaCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	apps, err := node.Call(ctx, "application", "which_applications")
	if err != nil {
		return fmt.Errorf("listing running applications: %w", err)
	}
	running, err := mnesiaRunning(apps)
	if err != nil {
		return fmt.Errorf("listing running applications: %w", err)
	}
	if !running {
		// Never started here: Mnesia is the application's to start.
		return fmt.Errorf("mnesia: %w: the mnesia application is not running", errUnavailable)
	}
	reply, err := evaluate(ctx, node, mnesiaExpr)
	if err != nil {
		return fmt.Errorf("reading mnesia: %w", err)
	}
	r, err := parseMnesia(reply, *mnesiaTopN)
	if err != nil {
		return fmt.Errorf("reading mnesia: %w", err)
	}
	ch <- prometheus.MustNewConstMetric(mnesiaHeldLocksDesc, prometheus.GaugeValue, r.heldLocks)
	ch <- prometheus.MustNewConstMetric(mnesiaLockQueueDesc, prometheus.GaugeValue, r.lockQueue)
	ch <- prometheus.MustNewConstMetric(mnesiaTransactionsDesc, prometheus.CounterValue, r.commits, "committed")
	ch <- prometheus.MustNewConstMetric(mnesiaTransactionsDesc, prometheus.CounterValue, r.failures, "failed")
	ch <- prometheus.MustNewConstMetric(mnesiaRestartsDesc, prometheus.CounterValue, r.restarts)
	ch <- prometheus.MustNewConstMetric(mnesiaLogWritesDesc, prometheus.CounterValue, r.logWrites)
	for _, t := range r.tables {
		ch <- prometheus.MustNewConstMetric(mnesiaTableMemoryDesc, prometheus.GaugeValue, t.memory, t.name, t.storage)
		ch <- prometheus.MustNewConstMetric(mnesiaTableRecordsDesc, prometheus.GaugeValue, t.records, t.name, t.storage)
	}
	return nil
}

// mnesiaRunning looks for mnesia in application:which_applications/0's
// [{App, Description, Vsn}].
func mnesiaRunning(t etf.Term) (bool, error) {
	apps, err := erlnode.List(t)
	if err != nil {
		return false, err
	}
	for _, a := range apps {
		tup, ok := a.(etf.Tuple)
		if !ok || len(tup) < 1 {
			return false, fmt.Errorf("application entry: expected a tuple")
		}
		if tup[0] == etf.Atom("mnesia") {
			return true, nil
		}
	}
	return false, nil
}

// parseMnesia decodes mnesiaExpr's value and ranks the tables by memory.
func parseMnesia(t etf.Term, topN int) (mnesiaReport, error) {
	var r mnesiaReport
	tup, err := erlnode.Tuple(t, 8)
	if err != nil {
		return r, err
	}
	nums := make([]float64, 7)
	for i := range nums {
		if nums[i], err = erlnode.NonNegative(tup[i]); err != nil {
			return r, fmt.Errorf("field %d: %w", i+1, err)
		}
	}
	wordsize := nums[0]
	if wordsize != 4 && wordsize != 8 {
		return r, fmt.Errorf("word size %v", wordsize)
	}
	r.heldLocks, r.lockQueue, r.commits, r.failures, r.restarts, r.logWrites = nums[1], nums[2], nums[3], nums[4], nums[5], nums[6]
	entries, err := erlnode.List(tup[7])
	if err != nil {
		return r, fmt.Errorf("tables: %w", err)
	}
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		row, err := erlnode.Tuple(e, 4)
		if err != nil {
			return r, fmt.Errorf("table: %w", err)
		}
		var tb mnesiaTable
		if tb.name, err = erlnode.Atom(row[0]); err != nil {
			return r, fmt.Errorf("table name: %w", err)
		}
		if seen[tb.name] { // local_tables names each table once
			return r, fmt.Errorf("table %.40q twice", tb.name)
		}
		seen[tb.name] = true
		if tb.storage, err = erlnode.Atom(row[1]); err != nil {
			return r, fmt.Errorf("table %s storage: %w", tb.name, err)
		}
		// A table being deleted or loaded answers with something else than
		// numbers for a moment; it is left out of this ranking.
		records, err1 := erlnode.NonNegative(row[2])
		memory, err2 := erlnode.NonNegative(row[3])
		if err1 != nil || err2 != nil {
			continue
		}
		switch tb.storage {
		case "ram_copies", "disc_copies":
			memory *= wordsize
		case "disc_only_copies":
		default:
			continue // external backends report memory in their own unit
		}
		tb.records, tb.memory = records, memory
		r.tables = append(r.tables, tb)
	}
	sort.Slice(r.tables, func(i, j int) bool {
		if r.tables[i].memory != r.tables[j].memory {
			return r.tables[i].memory > r.tables[j].memory
		}
		return r.tables[i].name < r.tables[j].name
	})
	if len(r.tables) > topN {
		r.tables = r.tables[:topN]
	}
	return r, nil
}
