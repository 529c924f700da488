// The Mnesia dashboard: transactions, locks and the largest local tables, from the opt-in mnesia collector.

package builder

// mnesiaNote opens the description of every Mnesia panel: the collector is
// opt-in and reads only nodes that run Mnesia.
const mnesiaNote = "Conditional: needs the opt-in mnesia collector (--collector.mnesia) and a node where the mnesia application runs; elsewhere this panel stays empty. "

func (r renderer) mnesia() dashboard {
	return dashboard{
		file:  "beam-mnesia.json",
		uid:   "beam-mnesia",
		title: "BEAM / Mnesia",
		description: "Mnesia transactions, restarts, locks and the largest local tables of the nodes that run it " +
			"(opt-in: --collector.mnesia).",
		panels: []panel{
			{
				typ: "timeseries", title: "Transactions per second", unit: "ops", w: 12, h: 8, min: f(0), conditional: true,
				targets: []target{ts(`sum by (job, instance, outcome) (`+r.rate("beam_mnesia_transactions_total")+`)`, "{{instance}} {{outcome}}")},
				description: mnesiaNote + "Transactions this node coordinated, committed or failed (aborted for good). " +
					"Failures are the application's aborts: look for {aborted, Reason} in its logs.",
			},
			{
				typ: "timeseries", title: "Restarted share of transactions", unit: "percentunit", w: 12, h: 8, min: f(0), conditional: true,
				targets: []target{ts(r.rate("beam_mnesia_transaction_restarts_total")+`
  /
sum without (outcome) (`+r.rate("beam_mnesia_transactions_total")+`)`, "{{instance}}")},
				description: mnesiaNote + "Restarts per finished transaction. Mnesia restarts a transaction to resolve a " +
					"lock conflict; a rising share, with a lock queue, means transactions contend for the same records " +
					"(a hot key, table locks, long transactions).",
			},
			{
				typ: "timeseries", title: "Locks held and queued", unit: "short", w: 12, h: 8, min: f(0), conditional: true,
				targets: []target{
					ts(r.sel("beam_mnesia_held_locks"), "{{instance}} held"),
					ts(r.sel("beam_mnesia_lock_queue_length"), "{{instance}} queued"),
				},
				description: mnesiaNote + "Locks held by transactions in flight, and lock requests waiting for one of " +
					"them. Held locks follow the load; a queue that stays above 0 is contention.",
			},
			{
				typ: "timeseries", title: "Transaction log writes per second", unit: "ops", w: 12, h: 8, min: f(0), conditional: true,
				targets: []target{ts(r.rate("beam_mnesia_transaction_log_writes_total"), "{{instance}}")},
				description: mnesiaNote + "Writes to the transaction log: the disc work behind disc_copies and " +
					"disc_only_copies tables. The log is dumped every dump_log_write_threshold writes; a rate far above " +
					"that threshold per dump_log_time_threshold overloads the dumper (the 'Mnesia is overloaded' event).",
			},
			{
				typ: "timeseries", title: "Largest local tables by memory", unit: "bytes", w: 12, h: 8, min: f(0), conditional: true,
				targets: []target{ts(r.sel("beam_mnesia_table_memory_bytes"), "{{instance}} {{table}} ({{storage}})")},
				description: mnesiaNote + "The top N local tables by memory (--collector.mnesia.top-n): ETS memory for " +
					"ram_copies and disc_copies, the dets file for disc_only_copies. A table that only grows is a " +
					"retention problem; it also grows the node's ETS memory.",
			},
			{
				typ: "timeseries", title: "Records in the largest tables", unit: "short", w: 12, h: 8, min: f(0), conditional: true,
				targets: []target{ts(r.sel("beam_mnesia_table_records"), "{{instance}} {{table}} ({{storage}})")},
				description: mnesiaNote + "Records of the same tables. Memory per record (the previous panel divided by " +
					"this one) shows whether a table grows in records or in record size.",
			},
		},
	}
}
