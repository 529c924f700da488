// Beam_bench runs `make bench`: it starts its own BEAM nodes, measures the
// exporter against them and the in-VM baseline, and prints a report.
//
// main.go reads the flags; the work is in internal/bench.
package main
