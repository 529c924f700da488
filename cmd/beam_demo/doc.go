// Beam_demo starts a throwaway BEAM node with a small synthetic workload and
// beam_exporter against it, for `make demo`. Ctrl-C stops both.
//
// main.go holds the workload and the start order: the node first, then the
// exporter once the node is registered in EPMD.
package main
