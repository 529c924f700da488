// Package bench measures beam_exporter against nodes of several sizes and
// the in-VM baseline it replaces, for `make bench` (cmd/beam_bench).
//
// A run goes through these files:
//
//	node.go     throwaway nodes of N processes, with the bench module loaded
//	bench.go    Run: each collector's refresh and the baseline, per size
//	groups.go   the processes refresh without and with process_groups, in pairs
//	binary.go   the beam_exporter binary against a node: a scrape's cost
//	msacc.go    the cost of microstate accounting
//	stats.go    decoding the node's measurements, summarizing runs
//	report.go   the Markdown report, with the targets judged
package bench
