package builder

import (
	"fmt"

	"github.com/beam-exporter/beam_exporter/alerts"
)

func (r renderer) dashboards() []dashboard {
	return []dashboard{r.overview(), r.processes(), r.memory(), r.allocators(), r.fleet(), r.distribution(), r.mnesia()}
}

func levels(name string, sev ...string) []string {
	var keys []string
	for _, s := range sev {
		keys = append(keys, name+"."+s+".above")
	}
	return keys
}

// msaccNote opens the description of every panel that reads the opt-in msacc
// collector's metrics.
const msaccNote = "Needs the opt-in msacc collector (--collector.msacc); without it this panel stays empty. "

// hottest is how many nodes the fleet dashboard's ranking shows.
const hottest = 10

// Shared expressions, written once so that the dashboards and the alerts read
// the same quantity.

// sysmonNote opens the description of every panel that reads the opt-in
// sysmon collector.
const sysmonNote = "Needs the opt-in sysmon collector (--collector.sysmon), and a node whose system monitor nobody else holds; otherwise this panel stays empty. "

// sysmonSourceNote is sysmonNote for the panel whose series exist
// only once a source had an event.
const sysmonSourceNote = "Conditional: needs the opt-in sysmon collector (--collector.sysmon); a source has a series only once it had an event, so an uneventful node leaves this panel empty. "

func (r renderer) gcShare() string {
	return `sum without (state) (` + r.rate("beam_msacc_seconds_total", `thread_type="scheduler"`, `state=~"gc|gc_full"`) + `)
  /
sum without (state) (` + r.rate("beam_msacc_seconds_total", `thread_type="scheduler"`) + `)`
}

func (r renderer) runQueuePerScheduler(extra ...string) string {
	return fmt.Sprintf("avg_over_time(%s[%s])\n  /\n%s",
		r.sel("beam_run_queue_length", extra...), r.th.RunQueue.Window, r.sel("beam_schedulers", extra...))
}

func (r renderer) memoryGrowth() string {
	g := r.th.MemoryGrowth
	return fmt.Sprintf("sum without (kind) (deriv(%s[%s])) * %d\n  /\nsum without (kind) (%s)",
		r.sel("beam_memory_bytes"), g.Window, g.Horizon.Seconds(), r.sel("beam_memory_bytes"))
}

// kindGrowth is the quantity of BEAMBinaryMemoryGrowth and BEAMETSMemoryGrowth.
func (r renderer) kindGrowth(kind string, g alerts.Growth) string {
	return fmt.Sprintf("deriv(%s[%s]) * %d\n  / ignoring (kind)\nsum without (kind) (%s)",
		r.sel("beam_memory_bytes", `kind="`+kind+`"`), g.Window, g.Horizon.Seconds(), r.sel("beam_memory_bytes"))
}

// kindGrowthPanel draws the quantity of a kind's growth alert with its level.
func (r renderer) kindGrowthPanel(kind, what, alert, key string, g alerts.Growth) panel {
	return panel{
		typ: "timeseries", title: fmt.Sprintf("Projected %s growth in %s", what, g.Horizon), unit: "percentunit", w: 12, h: 8,
		targets:       []target{ts(r.kindGrowth(kind, g), "{{instance}}")},
		thresholdKeys: levels(key, "warning"),
		description: fmt.Sprintf("The growth of %s over the next %s if the slope of the last %s continues, as a "+
			"fraction of the node's current total memory: the quantity of the %s alert, whose level is the line "+
			"(the alert also waits until the node has been up for %s).", what, g.Horizon, g.Window, alert, g.MinUptime),
	}
}

func (r renderer) processGrowth() string {
	g := r.th.ProcessGrowth
	return fmt.Sprintf("deriv(%s[%s]) * %d\n  /\n%s",
		r.sel("beam_processes"), g.Window, g.Horizon.Seconds(), r.sel("beam_processes"))
}

func (r renderer) limitPanel(title, count, limit, key, what string) panel {
	return panel{
		typ: "timeseries", title: title, unit: "percentunit", w: 6, h: 7,
		min: f(0), max: f(1),
		targets:       []target{ts(r.sel(count)+" / "+r.sel(limit), "{{instance}}")},
		thresholdKeys: levels(key, "warning", "critical"),
		legendCalcs:   []string{"lastNotNull"},
		description: fmt.Sprintf("%s as a fraction of the emulator's limit (%s / %s). "+
			"The lines are the warning and critical levels of the %s alert. %s",
			what, count, limit, alertName(key), limitHint(key)),
	}
}

func alertName(key string) string {
	return map[string]string{
		"process_limit": "BEAMProcessLimit",
		"port_limit":    "BEAMPortLimit",
		"atom_limit":    "BEAMAtomLimit",
	}[key]
}

func limitHint(key string) string {
	return map[string]string{
		"process_limit": "A steady climb while traffic is flat means processes are leaking (spawned and never exiting).",
		"port_limit":    "Ports are sockets, files and external programs; a climb usually means connections are not closed.",
		"atom_limit":    "Atoms are never freed, so this line may only go up until a restart: any upward slope after warm-up is a leak (atoms made from user input).",
	}[key]
}

// etsTablesPanel is not a limitPanel: since OTP 20 ets_limit is no limit.
func (r renderer) etsTablesPanel(w, h int) panel {
	return panel{
		typ: "timeseries", title: "ETS tables / ets_limit", unit: "percentunit", w: w, h: h, min: f(0),
		targets:       []target{ts(r.sel("beam_ets_tables")+" / "+r.sel("beam_ets_table_limit"), "{{instance}}")},
		thresholdKeys: levels("ets_table_limit", "warning"),
		legendCalcs:   []string{"lastNotNull"},
		description: "ETS tables as a fraction of ets_limit (beam_ets_tables / beam_ets_table_limit). Not a hard limit " +
			"since OTP 20: ets:new keeps working past it, and ets_limit (+e, ERL_MAX_ETS_TABLES) only sizes the index " +
			"of named tables. The line is the BEAMETSTableLimit warning. A count that keeps growing means tables are " +
			"created per request or per process and not deleted; their memory is in the ets kind of memory.",
	}
}

func (r renderer) overview() dashboard {
	return dashboard{
		file:  "beam-overview.json",
		uid:   "beam-overview",
		title: "BEAM / Overview",
		description: "Is it the VM or my code? Scheduler load, run queues, memory, limits, GC and IO of BEAM nodes " +
			"measured by beam_exporter.",
		panels: []panel{
			{
				typ: "stat", title: "Node up", unit: "none", w: 4, h: 4,
				targets: []target{instant(r.sel("beam_up"), "{{instance}}")},
				mappings: valueMapping(map[string][2]string{
					"0": {"DOWN", "red"},
					"1": {"UP", "green"},
				}),
				options: map[string]any{"colorMode": "background"},
				description: "beam_up per instance: UP when the exporter reached the node at its last refresh, DOWN when it " +
					"could not (the BEAMDown alert fires after a while). No value at all means Prometheus cannot scrape the exporter.",
			},
			{
				typ: "stat", title: "Uptime", unit: "dtdurations", w: 4, h: 4,
				targets: []target{instant("time() - "+r.sel("beam_start_time_seconds"), "{{instance}}")},
				description: "Time since the BEAM node started (time() - beam_start_time_seconds). " +
					"A short uptime you did not expect means the node restarted: look for a crash or an out-of-memory kill.",
			},
			{
				typ: "stat", title: "OTP and ERTS version", unit: "none", w: 8, h: 4,
				targets: []target{instant(r.sel("beam_node_info"), "{{instance}}: OTP {{otp_release}}, ERTS {{erts_version}}")},
				options: map[string]any{"textMode": "name", "colorMode": "none"},
				description: "OTP release and ERTS version of each selected node, from beam_node_info. " +
					"Different versions in one job usually mean a rollout is in progress.",
			},
			{
				typ: "stat", title: "Online normal schedulers", unit: "none", w: 4, h: 4,
				targets: []target{instant(r.sel("beam_schedulers", `type="normal"`), "{{instance}}")},
				description: "Normal schedulers online (beam_schedulers{type=\"normal\"}), normally one per CPU the node may use. " +
					"Fewer than the CPUs of the host or container means +S or +SP limits them.",
			},
			{
				typ: "stat", title: "Total memory", unit: "bytes", w: 4, h: 4,
				targets: []target{instant(`sum without (kind) (`+r.sel("beam_memory_bytes")+`)`, "{{instance}}")},
				description: "Memory the BEAM has allocated for its own use (the sum of beam_memory_bytes over all kinds, " +
					"equal to erlang:memory(total)). The OS resident size is somewhat larger because of allocator overhead.",
			},
			{
				typ: "timeseries", title: "Scheduler utilization by type", unit: "percentunit", w: 12, h: 8,
				min: f(0), max: f(1),
				targets:       []target{ts(r.sel("beam_scheduler_utilization_ratio"), "{{instance}} {{type}}")},
				thresholdKeys: levels("scheduler_saturation", "warning"),
				description: "Share of wall time the schedulers of each type spent doing work, from scheduler_wall_time " +
					"(busy waiting is not counted, unlike OS CPU). Normal schedulers run Erlang code: the lines are the " +
					"BEAMSchedulerSaturation levels, which the alert applies to a 5m average of the normal type. " +
					"Dirty CPU and dirty IO schedulers run NIFs and BIFs that would block a normal scheduler.",
			},
			{
				typ: "timeseries", title: "Run queue per online scheduler", unit: "short", w: 12, h: 8,
				min:           f(0),
				targets:       []target{ts(r.runQueuePerScheduler(), "{{instance}} {{type}}")},
				thresholdKeys: levels("run_queue", "warning"),
				description: fmt.Sprintf("Runnable processes waiting per online scheduler of each type, averaged over %s like "+
					"the BEAMRunQueueBacklog alert (its line applies to the normal type). Near 0 is healthy; a queue that "+
					"stays above a few per scheduler means work arrives faster than it can run, and latency grows with it.",
					r.th.RunQueue.Window),
			},
			{
				typ: "timeseries", title: "Memory by kind (selected nodes)", unit: "bytes", w: 12, h: 8,
				stacked: true, min: f(0),
				targets: []target{ts(`sum by (kind) (`+r.sel("beam_memory_bytes")+`)`, "{{kind}}")},
				description: "BEAM memory split into processes, binary, ets, code, atom and other, stacked so that the top " +
					"edge is the total, summed over the selected nodes (select one instance to see one node). " +
					"Processes growing: heaps and mailboxes. Binary growing: large binaries kept alive. ETS growing: tables filling up.",
			},
			{
				typ: "timeseries", title: "Scheduler thread time by state", unit: "percentunit", w: 12, h: 8,
				min: f(0), max: f(1),
				targets: []target{ts(`sum by (job, instance, state) (`+r.rate("beam_msacc_seconds_total", `thread_type="scheduler"`)+`)
  / on (job, instance) group_left ()
sum by (job, instance) (`+r.rate("beam_msacc_seconds_total", `thread_type="scheduler"`)+`)`, "{{instance}} {{state}}")},
				description: msaccNote + "Microstate accounting: where the normal scheduler threads spend their time " +
					"(emulator = running Erlang code, gc = garbage collection, port = port and driver work, check_io = " +
					"polling, sleep = idle, other and aux = housekeeping).",
			},
			r.limitPanel("Processes / limit", "beam_processes", "beam_process_limit", "process_limit", "Processes"),
			r.limitPanel("Ports / limit", "beam_ports", "beam_port_limit", "port_limit", "Ports"),
			r.limitPanel("Atoms / limit", "beam_atoms", "beam_atom_limit", "atom_limit", "Atoms"),
			r.etsTablesPanel(6, 7),
			{
				typ: "timeseries", title: "Garbage collections per second", unit: "ops", w: 8, h: 8, min: f(0),
				targets: []target{ts(r.rate("beam_gc_runs_total"), "{{instance}}")},
				description: "Garbage collections per second, all processes together. The number follows the allocation rate " +
					"and is high on any busy node; compare it with the node's own past rather than with a fixed value.",
			},
			{
				typ: "timeseries", title: "Memory reclaimed by GC", unit: "Bps", w: 8, h: 8, min: f(0),
				targets: []target{ts(r.rate("beam_gc_reclaimed_bytes_total"), "{{instance}}")},
				description: "Bytes per second freed by garbage collection: roughly the rate at which processes allocate " +
					"short-lived data. A jump with the same traffic points at code that copies more than before.",
			},
			{
				typ: "timeseries", title: "GC share of scheduler time", unit: "percentunit", w: 8, h: 8, min: f(0),
				targets:       []target{ts(r.gcShare(), "{{instance}}")},
				thresholdKeys: levels("gc_pressure", "warning"),
				description: msaccNote + "Share of normal scheduler thread time (sleep included) spent in the gc and " +
					"gc_full states of microstate accounting: the real GC time, which statistics(garbage_collection) " +
					"cannot give. The line is the BEAMGCPressure level. A few percent is normal.",
			},
			{
				typ: "timeseries", title: "System monitor events per second", unit: "ops", w: 8, h: 8, min: f(0),
				targets: []target{ts(`sum by (job, instance, event) (`+r.rate("beam_system_monitor_events_total")+`)`, "{{instance}} {{event}}")},
				description: sysmonNote + "Events of the node's system monitor above the exporter's thresholds: long_gc (one " +
					"process's collection took --collector.sysmon.long-gc or more), long_schedule (a process or port ran " +
					"that long unscheduled), large_heap, busy_port, busy_dist_port (a process was suspended sending to a " +
					"busy port or distribution link) and long_message_queue (OTP 27+). Any steady rate of long_gc or " +
					"long_schedule is latency the callers of those processes feel.",
			},
			{
				typ: "timeseries", title: "Time in long GCs", unit: "percentunit", w: 8, h: 8, min: f(0),
				targets: []target{ts(r.rate("beam_system_monitor_long_gc_seconds_sum"), "{{instance}}")},
				description: sysmonNote + "Wall-clock seconds per second spent in garbage collections of one process that " +
					"each took at least the long-gc threshold (100 ms by default), summed over processes: 10% is a " +
					"tenth of one scheduler's time. Collections below the threshold are not in it; the GC share panel " +
					"(msacc) has them all.",
			},
			{
				typ: "timeseries", title: "System monitor events by source", unit: "ops", w: 8, h: 8, min: f(0), conditional: true,
				targets: []target{ts(`topk(10, sum by (instance, event, source) (`+r.rate("beam_system_monitor_events_by_source_total")+`))`, "{{instance}} {{event}} {{source}}")},
				description: sysmonSourceNote + "The processes (by stable name: registered name, proc_lib " +
					"label or initial call) and port drivers behind the events, the ten busiest. other is every source " +
					"after the first --collector.sysmon.top-n; unclassified, events counted while the monitor was behind. " +
					"/top shows the same names with their pids.",
			},
			{
				typ: "timeseries", title: "Reductions per second", unit: "ops", w: 8, h: 8, min: f(0),
				targets: []target{ts(r.rate("beam_reductions_total"), "{{instance}}")},
				description: "Reductions (units of work the schedulers count) per second: the BEAM's own measure of how much " +
					"code runs. Flat reductions with rising latency point away from CPU work (locks, IO, a slow dependency).",
			},
			{
				typ: "timeseries", title: "Context switches per second", unit: "ops", w: 8, h: 8, min: f(0),
				targets: []target{ts(r.rate("beam_context_switches_total"), "{{instance}}")},
				description: "Process switches per second on the schedulers. Many switches with few reductions each means " +
					"lots of tiny messages between processes.",
			},
			{
				typ: "timeseries", title: "CPU time used by the node", unit: "short", w: 8, h: 8, min: f(0),
				axisLabel: "CPU cores",
				targets:   []target{ts(r.rate("beam_cpu_seconds_total"), "{{instance}}")},
				description: "CPU seconds per second consumed by the runtime (statistics(runtime)), i.e. cores in use. " +
					"Compare with the online schedulers: high scheduler utilization with low CPU means schedulers wait on something else.",
			},
			{
				typ: "timeseries", title: "IO bytes", unit: "Bps", w: 12, h: 8,
				targets: []target{
					ts(r.rate("beam_io_received_bytes_total"), "{{instance}} received"),
					ts(r.rate("beam_io_sent_bytes_total"), "{{instance}} sent"),
				},
				description: "Bytes per second received and sent through ports (sockets, files, pipes), from statistics(io). " +
					"Distribution traffic to other nodes is included.",
			},
			{
				typ: "timeseries", title: "Exporter collectors: success", unit: "none", w: 6, h: 8,
				min: f(0), max: f(1), legendCalcs: []string{"min", "lastNotNull"},
				targets: []target{ts(`min by (collector) (`+r.sel("beam_scrape_collector_success")+`)`, "{{collector}}")},
				description: "1 when a collector succeeded at its last refresh on every selected node, 0 when it failed on " +
					"at least one. A collector stuck at 0 leaves its panels and alerts blind (BEAMExporterCollectorFailing).",
			},
			{
				typ: "timeseries", title: "Exporter collectors: duration", unit: "s", w: 6, h: 8, min: f(0),
				targets: []target{ts(`max by (collector) (`+r.sel("beam_scrape_collector_duration_seconds")+`)`, "{{collector}}")},
				description: "Slowest time each collector took to read the node, over the selected nodes. A collector close " +
					"to the scrape timeout will start failing; the processes collector grows with the number of processes.",
			},
			{
				typ: "stat", title: "Lock counting available", unit: "none", w: 4, h: 8,
				targets: []target{instant(r.sel("beam_lock_counting_available"), "{{instance}}")},
				mappings: valueMapping(map[string][2]string{
					"0": {"standard build", "text"},
					"1": {"lock counting", "blue"},
				}),
				description: "1 when the node runs a lock-counting emulator (started with -emu_type lcnt), 0 on standard " +
					"builds. Only lock-counting builds have lock counters, so the two lock panels stay empty otherwise.",
			},
			{
				typ: "timeseries", title: "Lock collisions per second (top 10 locks)", unit: "ops", w: 10, h: 8, min: f(0),
				conditional: true,
				targets:     []target{ts(`topk(10, sum by (lock) (`+r.rate("beam_lock_collisions_total")+`))`, "{{lock}}")},
				description: "Times per second a thread found a lock taken and had to wait, for the most contended lock classes. " +
					"Collisions on a few locks (a hot ETS table, a port, the process table) explain scheduler time that does no work.",
			},
			{
				typ: "timeseries", title: "Lock collision ratio (top 10 locks)", unit: "percentunit", w: 10, h: 8, min: f(0),
				conditional: true,
				targets: []target{ts(`topk(10,
  sum by (lock) (`+r.rate("beam_lock_collisions_total")+`)
    /
  sum by (lock) (`+r.rate("beam_lock_acquisitions_total")+`)
)`, "{{lock}}")},
				description: "Share of acquisitions of each lock class that collided. A high ratio on a lock that is taken often " +
					"is contention worth fixing (for example read_concurrency or write_concurrency on an ETS table).",
			},
		},
	}
}

func (r renderer) processes() dashboard {
	topTable := func(title, metric, unit, valueName, desc string) panel {
		return panel{
			typ: "table", title: title, unit: unit, w: 8, h: 10,
			targets:     []target{tableQ(`sort_desc(` + r.sel(metric) + `)`)},
			transforms:  []any{organize([]string{"job"}, map[string]string{"Value": valueName}, []string{"instance", "rank", "process", "Value"})},
			sortBy:      valueName,
			description: desc,
		}
	}
	return dashboard{
		file:  "beam-processes.json",
		uid:   "beam-processes",
		title: "BEAM / Processes and mailboxes",
		description: "The top-N processes by memory, mailbox and reductions, over time and right now, and the processes " +
			"that keep coming back among the largest.",
		panels: []panel{
			{
				typ: "timeseries", title: "Processes", unit: "short", w: 8, h: 8, min: f(0),
				targets: []target{ts(r.sel("beam_processes"), "{{instance}}")},
				description: "Number of processes on each node: its baseline is the night-time floor and the daytime peak " +
					"(observability.md gives the figures of an idle node). Compare its shape with traffic: a count that " +
					"keeps rising while traffic is flat means processes are started and never exit.",
			},
			{
				typ: "timeseries", title: fmt.Sprintf("Projected process-count growth in %s", r.th.ProcessGrowth.Horizon),
				unit: "percentunit", w: 8, h: 8,
				targets:       []target{ts(r.processGrowth(), "{{instance}}")},
				thresholdKeys: levels("process_growth", "warning"),
				description: fmt.Sprintf("The growth of the process count over the next %s if the slope of the last %s "+
					"continues, as a fraction of the current count: the quantity of the BEAMProcessGrowth alert, whose "+
					"level is the line (the alert also needs it for %s, and waits until the node has been up for %s). "+
					"A traffic ramp shows here too when the node runs a process per connection.",
					r.th.ProcessGrowth.Horizon, r.th.ProcessGrowth.Window, r.th.ProcessGrowth.Warning.For, r.th.ProcessGrowth.MinUptime),
			},
			{
				typ: "timeseries", title: "Largest mailboxes", unit: "short", w: 8, h: 8, min: f(0),
				targets:       []target{ts(`max by (instance, process) (`+r.sel("beam_process_message_queue_length")+`)`, "{{instance}} {{process}}")},
				thresholdKeys: levels("mailbox", "warning"),
				description: "Messages waiting in the mailboxes of the top-N processes (rank label dropped, so a process " +
					"keeps its line when its rank changes). The line is the BEAMMailboxGrowing level; the alert also " +
					"requires the queue to keep rising. A mailbox that only grows means the process cannot keep up.",
			},
			{
				typ: "timeseries", title: "Top processes by memory", unit: "bytes", w: 12, h: 9, min: f(0),
				targets: []target{ts(`max by (instance, process) (`+r.sel("beam_process_memory_bytes")+`)`, "{{instance}} {{process}}")},
				description: "Memory (heap, stack, mailbox and internal structures) of the top-N processes by memory. " +
					"Names come from the registered name, the proc_lib label or the initial call, never pids; " +
					"the exporter's /top page shows the pids. " +
					"One line climbing for hours is a process holding on to state.",
			},
			{
				typ: "timeseries", title: "Top processes by reductions", unit: "ops", w: 12, h: 9, min: f(0),
				axisLabel: "reductions/s",
				targets:   []target{ts(`max by (instance, process) (`+r.sel("beam_process_reductions_per_second")+`)`, "{{instance}} {{process}}")},
				description: "Reductions per second of the processes that did the most work over the exporter's short " +
					"sampling window (like recon:proc_window). These are the processes keeping the schedulers busy.",
			},
			{
				typ: "timeseries", title: "Memory by process group", unit: "bytes", w: 12, h: 9, min: f(0),
				targets: []target{ts(`sum by (instance, group) (`+r.sel("beam_process_group_memory_bytes")+`)`, "{{instance}} {{group}}")},
				description: "Memory of all the processes of each kind, summed: the top groups by memory and \"other\" " +
					"for the rest, which together make every process the exporter's scan read. A group is the process " +
					"label of the top-N panels (registered name, proc_lib label or initial call), so 100,000 small " +
					"workers that never reach the top-N show here as one line. A group climbing while its process count " +
					"(next panel) stays flat holds more per process; both climbing, more processes.",
			},
			{
				typ: "table", title: "Process groups now", unit: "bytes", w: 12, h: 9,
				targets: []target{
					tableQ(`sum by (instance, group) (` + r.sel("beam_process_group_memory_bytes") + `)`),
					tableQ(`sum by (instance, group) (` + r.sel("beam_process_group_processes") + `)`),
					tableQ(`sum by (instance, group) (` + r.sel("beam_process_group_message_queue_length") + `)`),
					tableQ(`sum by (instance, group) (` + r.sel("beam_process_group_reductions_per_second") + `)`),
				},
				transforms: []any{merge, organize(nil, map[string]string{
					"Value #A": "Memory",
					"Value #B": "Processes",
					"Value #C": "Messages",
					"Value #D": "Reductions/s",
				}, []string{"instance", "group", "Value #A", "Value #B", "Value #C", "Value #D"})},
				overrides: []any{unitOverride("Processes", "short"), unitOverride("Messages", "short"), unitOverride("Reductions/s", "ops")},
				sortBy:    "Memory",
				description: "Each node's process groups at the end of the time range, largest by memory first: how many " +
					"processes of each kind, their memory, the messages waiting in their mailboxes and the reductions " +
					"per second they did over the exporter's sampling window, all summed over the group. The rows of a " +
					"node add up to all its processes. Memory divided by processes is the size of a typical member.",
			},
			topTable("Top processes by memory now", "beam_process_memory_bytes", "bytes", "Memory",
				"The top-N processes by memory at the end of the time range, per node, largest first."),
			topTable("Top mailboxes now", "beam_process_message_queue_length", "short", "Messages",
				"The top-N mailboxes at the end of the time range, per node, longest first."),
			topTable("Top reducers now", "beam_process_reductions_per_second", "ops", "Reductions/s",
				"The processes doing the most work at the end of the time range, per node, busiest first."),
			{
				typ: "table", title: "Frequent fliers: top-N by memory over the time range", unit: "percentunit", w: 24, h: 10,
				targets: []target{
					tableQ(`sum by (process) (sum_over_time(` + r.sel(alerts.RecordPlaces) + `[$__range]))
  / on () group_left ()
sum (count_over_time(` + r.sel(alerts.RecordRankingUp) + `[$__range]))`),
					tableQ(`sum by (process) (sum_over_time(` + r.sel(alerts.RecordMemorySum) + `[$__range]))
  /
sum by (process) (sum_over_time(` + r.sel(alerts.RecordPlaces) + `[$__range]))`),
					tableQ(`max by (process) (max_over_time(` + r.sel(alerts.RecordProcessPeak) + `[$__range]))`),
					tableQ(`count by (process) (count_over_time(` + r.sel(alerts.RecordPlaces) + `[$__range]))`),
				},
				transforms: []any{merge, organize(nil, map[string]string{
					"Value #A": "Share of rankings",
					"Value #B": "Average memory",
					"Value #C": "Peak memory",
					"Value #D": "Nodes",
				}, []string{"process", "Value #A", "Value #B", "Value #C", "Value #D"})},
				overrides: []any{unitOverride("Average memory", "bytes"), unitOverride("Peak memory", "bytes"), unitOverride("Nodes", "short")},
				sortBy:    "Share of rankings",
				description: fmt.Sprintf("Which process names hold places in the top-N by memory most often over the "+
					"selected time range. Share of rankings: the places a name held, summed over the selected nodes, "+
					"divided by the rankings taken on them; the recording rules of beam_exporter.rules.yml sample the "+
					"latest ranking every %s, so the figure does not depend on the scrape interval. 100%% is a name in "+
					"the top-N of every ranking of every node; a name several processes share (a pool's workers) holds "+
					"several places and can pass 100%%. Then its average memory while there, its peak, and on how many "+
					"nodes it appeared. A name at the top on every node is a design hot spot; one on one node only is a "+
					"local incident. Empty unless Prometheus loads the shipped rule file.", r.th.ProcessRankings.Interval),
			},
			{
				typ: "timeseries", title: "Peak memory of the biggest process, per instance", unit: "bytes", w: 16, h: 9,
				min: f(0), interval: r.th.ProcessRankings.Interval.Text,
				targets: []target{ts(`max_over_time(`+r.sel(alerts.RecordInstancePeak)+`[$__interval])`, "{{instance}}")},
				description: fmt.Sprintf("For each node, the largest memory its biggest process reached within each point "+
					"of the graph ($__interval, at least the %s of the recording rule that keeps every scraped peak), so "+
					"no peak is lost however wide the time range. Nodes doing the same job should draw similar lines: "+
					"one pod whose line climbs away from the others has a process that outgrows its peers there (a stuck "+
					"session, an oversized state, a backlog). Empty unless Prometheus loads the shipped rule file.",
					r.th.ProcessRankings.Interval),
			},
			{
				typ: "bargauge", title: "Biggest process per instance, peak over the time range", unit: "bytes", w: 8, h: 9,
				targets: []target{instant(`sort_desc(max_over_time(`+r.sel(alerts.RecordInstancePeak)+`[$__range]))`, "{{instance}}")},
				description: "Nodes ranked by the peak memory of their biggest process over the selected time range, " +
					"largest first: the quick answer to \"which pod has the fattest process\". Reads a recording rule " +
					"of the shipped rule file.",
			},
		},
	}
}

func (r renderer) memory() dashboard {
	return dashboard{
		file:        "beam-memory.json",
		uid:         "beam-memory",
		title:       "BEAM / Memory, ETS and binaries",
		description: "BEAM memory by kind, its trends against the alert levels, the largest ETS tables and binary memory.",
		panels: []panel{
			{
				typ: "timeseries", title: "Memory by kind", unit: "bytes", w: 12, h: 8, min: f(0),
				targets: []target{ts(r.sel("beam_memory_bytes"), "{{instance}} {{kind}}")},
				description: "Each kind of BEAM memory per node: processes (heaps, stacks, mailboxes), binary (off-heap " +
					"reference-counted binaries), ets, code, atom and other (system structures). The kinds add up to the total.",
			},
			{
				typ: "timeseries", title: "Memory share by kind", unit: "percentunit", w: 12, h: 8, min: f(0), max: f(1),
				targets: []target{ts(r.sel("beam_memory_bytes")+"\n  / ignoring (kind) group_left ()\nsum without (kind) ("+r.sel("beam_memory_bytes")+")", "{{instance}} {{kind}}")},
				description: "Each kind as a share of the node's total. A share that drifts up over days tells which kind to " +
					"investigate when total memory grows.",
			},
			{
				typ: "timeseries", title: "Total memory", unit: "bytes", w: 12, h: 8, min: f(0),
				targets:     []target{ts(`sum without (kind) (`+r.sel("beam_memory_bytes")+`)`, "{{instance}}")},
				description: "Total BEAM memory per node (erlang:memory(total)). Sawtooth is normal; a rising floor is not.",
			},
			{
				typ: "timeseries", title: fmt.Sprintf("Projected memory growth in %s", r.th.MemoryGrowth.Horizon),
				unit: "percentunit", w: 12, h: 8,
				targets:       []target{ts(r.memoryGrowth(), "{{instance}}")},
				thresholdKeys: levels("memory_growth", "warning"),
				description: fmt.Sprintf("The growth of total memory over the next %s if the slope of the last %s continues, "+
					"as a fraction of the current total: the quantity of the BEAMMemoryGrowth alert, whose level is the line "+
					"(the alert also waits until the node has been up for %s). Below 0 the node is shrinking.",
					r.th.MemoryGrowth.Horizon, r.th.MemoryGrowth.Window, r.th.MemoryGrowth.MinUptime),
			},
			{
				typ: "timeseries", title: "Binary memory", unit: "bytes", w: 12, h: 8, min: f(0),
				targets: []target{ts(r.sel("beam_memory_bytes", `kind="binary"`), "{{instance}}")},
				description: "Memory of reference-counted binaries (larger than 64 bytes, kept off the process heaps). They " +
					"are freed only when every process holding a reference has garbage collected, so processes that route " +
					"binaries but rarely collect keep them alive.",
			},
			r.kindGrowthPanel("binary", "binary memory", "BEAMBinaryMemoryGrowth", "binary_growth", r.th.BinaryGrowth),
			{
				typ: "timeseries", title: "ETS memory", unit: "bytes", w: 12, h: 8, min: f(0),
				targets: []target{ts(r.sel("beam_memory_bytes", `kind="ets"`), "{{instance}}")},
				description: "Memory of all ETS tables of each node (the ets kind of erlang:memory/0). The tables below show " +
					"which ones hold it. A rising floor is a table that gains more than it loses: a cache without eviction.",
			},
			r.kindGrowthPanel("ets", "ETS memory", "BEAMETSMemoryGrowth", "ets_growth", r.th.ETSGrowth),
			{
				typ: "timeseries", title: "Largest ETS tables by memory", unit: "bytes", w: 12, h: 9, min: f(0),
				targets: []target{ts(`max by (instance, table) (`+r.sel("beam_ets_table_memory_bytes")+`)`, "{{instance}} {{table}}")},
				description: "Memory of the top-N ETS tables by memory. Named tables show their name, unnamed ones their " +
					"owner. A table that grows without bound is a cache without eviction.",
			},
			{
				typ: "table", title: "Largest ETS tables now", unit: "bytes", w: 12, h: 9,
				targets: []target{
					tableQ(`sort_desc(` + r.sel("beam_ets_table_memory_bytes") + `)`),
					tableQ(r.sel("beam_ets_table_objects")),
				},
				transforms: []any{merge, organize([]string{"job"}, map[string]string{
					"Value #A": "Memory",
					"Value #B": "Objects",
				}, []string{"instance", "table", "Value #A", "Value #B"})},
				overrides:   []any{unitOverride("Objects", "short")},
				sortBy:      "Memory",
				description: "The top-N ETS tables at the end of the time range with their memory and object count, largest first.",
			},
			{
				typ: "timeseries", title: "ETS table objects", unit: "short", w: 12, h: 8, min: f(0),
				targets:     []target{ts(`max by (instance, table) (`+r.sel("beam_ets_table_objects")+`)`, "{{instance}} {{table}}")},
				description: "Objects in the largest ETS tables. Memory growing faster than objects means the objects themselves got bigger.",
			},
			r.etsTablesPanel(12, 8),
			{
				typ: "timeseries", title: "Biggest process share of process memory", unit: "percentunit", w: 12, h: 8,
				min: f(0), max: f(1),
				targets: []target{ts(`max without (rank, process) (`+r.sel("beam_process_memory_bytes", `rank="1"`)+`)
  / ignoring (kind)
`+r.sel("beam_memory_bytes", `kind="processes"`), "{{instance}}")},
				description: "Memory of the biggest process as a share of all process memory. Near 100% means one process " +
					"holds the node's process memory: look it up in the Processes dashboard.",
			},
			{
				typ: "timeseries", title: "Memory reclaimed by GC", unit: "Bps", w: 12, h: 8, min: f(0),
				targets: []target{ts(r.rate("beam_gc_reclaimed_bytes_total"), "{{instance}}")},
				description: "Bytes per second freed by garbage collection. If memory rises while this stays flat, the new " +
					"memory is not garbage: something keeps references to it.",
			},
		},
	}
}

func (p panel) sized(w, h int) panel {
	p.w, p.h = w, h
	return p
}

func (r renderer) fleet() dashboard {
	by := func(expr string) string { return "max by (job, instance) (" + expr + ")" }
	return dashboard{
		file:  "beam-fleet.json",
		uid:   "beam-fleet",
		title: "BEAM / Fleet",
		description: "Many BEAM nodes side by side: which node runs hot, ranked by scheduler utilization, memory, " +
			"run queue and mailboxes.",
		panels: []panel{
			{
				typ: "stat", title: "Nodes up", unit: "short", w: 6, h: 4,
				targets:     []target{instant(`sum(`+r.sel("beam_up")+`)`, "up")},
				description: "Selected nodes the exporters currently reach (beam_up = 1).",
			},
			{
				typ: "stat", title: "Nodes down", unit: "short", w: 6, h: 4,
				targets: []target{instant(`count(`+r.sel("beam_up")+` == 0) or vector(0)`, "down")},
				options: map[string]any{"colorMode": "background"},
				steps:   []step{{1, "red"}},
				description: "Selected nodes whose exporter cannot reach them (beam_up = 0), red from 1. Each one is a " +
					"BEAMDown candidate; a share of a job's nodes is BEAMNodesDown (see \"Share of nodes down\").",
			},
			{
				typ: "stat", title: "OTP releases in the fleet", unit: "short", w: 12, h: 4,
				targets:     []target{instant(`count by (otp_release) (`+r.sel("beam_node_info")+`)`, "OTP {{otp_release}}")},
				options:     map[string]any{"textMode": "value_and_name", "colorMode": "none"},
				description: "How many selected nodes run each OTP release. More than one entry means a mixed fleet.",
			},
			{
				typ: "timeseries", title: "Share of nodes down, per job and " + r.th.AppLabel, unit: "percentunit", w: 24, h: 6,
				min: f(0), max: f(1),
				targets: []target{ts(fmt.Sprintf("1 - avg by (job, %s) (%s)", r.th.AppLabel, r.sel("beam_up")),
					"{{job}} {{"+r.th.AppLabel+"}}")},
				thresholdKeys: levels("nodes_down", "critical"),
				description: fmt.Sprintf("Share of the selected nodes of each job and %s that the exporters cannot reach "+
					"(beam_up 0). The line is the BEAMNodesDown level: above it for %s pages, while a single node down "+
					"is only the BEAMDown warning. A deploy shows as a short bump while new nodes boot.",
					r.th.AppLabel, r.th.NodesDown.Critical.For),
			},
			{
				typ: "timeseries", title: "Normal scheduler utilization per instance", unit: "percentunit", w: 12, h: 9,
				min: f(0), max: f(1),
				targets:       []target{ts(r.sel("beam_scheduler_utilization_ratio", `type="normal"`), "{{instance}}")},
				thresholdKeys: levels("scheduler_saturation", "warning"),
				legendCalcs:   []string{"mean", "max"},
				options: map[string]any{"legend": map[string]any{
					"calcs": []string{"mean", "max"}, "displayMode": "table", "placement": "right", "showLegend": true,
					"sortBy": "Mean", "sortDesc": true,
				}},
				description: "Normal-scheduler utilization of every selected node on one graph; the legend ranks them by " +
					"average. The lines are the BEAMSchedulerSaturation levels. Nodes behind the same load balancer should " +
					"move together: one far above the rest gets more work or does it less efficiently.",
			},
			{
				typ: "bargauge", title: fmt.Sprintf("Hottest %d nodes (%s average utilization)", hottest, r.th.SchedulerSaturation.Window),
				unit: "percentunit", w: 12, h: 9, min: f(0), max: f(1),
				targets: []target{instant(fmt.Sprintf(`sort_desc(topk(%d, avg_over_time(%s[%s])))`, hottest,
					r.sel("beam_scheduler_utilization_ratio", `type="normal"`), r.th.SchedulerSaturation.Window), "{{instance}}")},
				thresholdKeys: levels("scheduler_saturation", "warning"),
				description: fmt.Sprintf("The %d selected nodes with the highest normal-scheduler utilization averaged "+
					"over the same window as the alert, hottest first, coloured by the alert level; a fleet of hundreds "+
					"still fits.", hottest),
			},
			{
				typ: "table", title: "Fleet at a glance", unit: "percentunit", w: 24, h: 10,
				targets: []target{
					tableQ(by(fmt.Sprintf(`avg_over_time(%s[%s])`, r.sel("beam_scheduler_utilization_ratio", `type="normal"`), r.th.SchedulerSaturation.Window))),
					tableQ(by(`sum without (kind) (` + r.sel("beam_memory_bytes") + `)`)),
					tableQ(by(r.sel("beam_processes"))),
					tableQ(by(r.runQueuePerScheduler(`type="normal"`))),
					tableQ(by(r.sel("beam_process_message_queue_length"))),
					tableQ(by(`time() - ` + r.sel("beam_start_time_seconds"))),
				},
				transforms: []any{merge, organize(nil, map[string]string{
					"Value #A": "Utilization",
					"Value #B": "Memory",
					"Value #C": "Processes",
					"Value #D": "Run queue / scheduler",
					"Value #E": "Largest mailbox",
					"Value #F": "Uptime",
				}, []string{"job", "instance", "Value #A", "Value #B", "Value #C", "Value #D", "Value #E", "Value #F"})},
				overrides: []any{
					unitOverride("Memory", "bytes"),
					unitOverride("Processes", "short"),
					unitOverride("Run queue / scheduler", "short"),
					unitOverride("Largest mailbox", "short"),
					unitOverride("Uptime", "dtdurations"),
				},
				sortBy: "Utilization",
				description: "One row per node, hottest first: normal-scheduler utilization and run queue per scheduler " +
					"(averaged like the alerts), total memory, process count, largest mailbox and uptime. Click a column to " +
					"rank by it.",
			},
			{
				typ: "bargauge", title: "Memory per instance", unit: "bytes", w: 12, h: 9,
				targets:     []target{instant(`sort_desc(sum by (job, instance) (`+r.sel("beam_memory_bytes")+`))`, "{{instance}}")},
				description: "Selected nodes ranked by total BEAM memory, largest first.",
			},
			{
				typ: "timeseries", title: "Total memory per instance", unit: "bytes", w: 12, h: 9, min: f(0),
				targets:     []target{ts(`sum by (job, instance) (`+r.sel("beam_memory_bytes")+`)`, "{{instance}}")},
				legendCalcs: []string{"mean", "max"},
				options: map[string]any{"legend": map[string]any{
					"calcs": []string{"mean", "max"}, "displayMode": "table", "placement": "right", "showLegend": true,
					"sortBy": "Max", "sortDesc": true,
				}},
				description: "Total BEAM memory of every selected node over time; the legend ranks them by peak.",
			},
			{
				typ: "timeseries", title: "Run queue per scheduler per instance", unit: "short", w: 12, h: 8, min: f(0),
				targets:       []target{ts(r.runQueuePerScheduler(`type="normal"`), "{{instance}}")},
				thresholdKeys: levels("run_queue", "warning"),
				description: fmt.Sprintf("Normal run-queue length per online scheduler, averaged over %s, for every node; the "+
					"line is the BEAMRunQueueBacklog level.", r.th.RunQueue.Window),
			},
			{
				typ: "timeseries", title: "GC share of scheduler time per instance", unit: "percentunit", w: 12, h: 8, min: f(0),
				targets:       []target{ts(r.gcShare(), "{{instance}}")},
				thresholdKeys: levels("gc_pressure", "warning"),
				description: msaccNote + "Share of normal scheduler thread time spent in garbage collection (gc and " +
					"gc_full states, sleep included), per node; the line is the BEAMGCPressure level.",
			},
			{
				typ: "timeseries", title: "Top 10 instances by reductions", unit: "ops", w: 12, h: 8, min: f(0),
				axisLabel: "reductions/s",
				targets:   []target{ts(`topk(10, sum by (job, instance) (`+r.rate("beam_reductions_total")+`))`, "{{instance}}")},
				description: "The ten selected nodes doing the most work (reductions per second). Compare with utilization: " +
					"a node with high utilization but fewer reductions than its peers is slowed by something else (GC, locks, dirty work).",
			},
			{
				typ: "bargauge", title: "Largest mailbox per instance", unit: "short", w: 12, h: 8,
				targets:       []target{instant(`sort_desc(`+by(r.sel("beam_process_message_queue_length"))+`)`, "{{instance}}")},
				thresholdKeys: levels("mailbox", "warning"),
				description: "Each node's longest mailbox among its top-N processes, longest first, coloured by the " +
					"BEAMMailboxGrowing level.",
			},
		},
	}
}
