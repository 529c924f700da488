// Package collector reads a BEAM node's runtime statistics and turns them
// into Prometheus metrics, one family (or a few close ones) per collector.
// It serves no HTTP: the web surface lives in cmd/beam_exporter/internal/web.
//
// A scrape flows through these files:
//
//	collector.go  the registry: each collector file registers its name,
//	              default, tier, flag validation and what it needs the
//	              probe session to keep on; the --collector.* flags
//	exporter.go   the umbrella Exporter: connection state, one tier cache
//	              per collector, beam_up and beam_scrape_collector_*
//	calls.go      the read-only BIFs the collectors call on the node
//	eval.go       fixed expressions run by erl_eval, for reads whose
//	              arguments (ports) cannot be sent as rpc arguments
//	ranking.go    decoding the probe's ranked lists
//	top.go        the ranking behind beam_process_*, for /top
//
// One file per family, each registered in its init:
//
//	node.go scheduler.go schedulers.go run_queue.go memory.go
//	system_limits.go gc.go reductions.go runtime.go processes.go
//	process_groups.go (reads the processes collector's scan)
//	ets.go locks.go msacc.go dist.go mnesia.go ports.go
//	allocators.go os_memory.go persistent_terms.go sysmon.go
package collector
