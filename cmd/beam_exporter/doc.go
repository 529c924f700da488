// Beam_exporter serves a BEAM node's runtime statistics to Prometheus.
//
// main.go only wires the flags to the packages that do the work:
//
//	collector              the metric families and their registry
//	erlnode                the connection to a node, over distribution
//	internal/config        the auth modules of --config.file
//	internal/fleet         the pool of connections behind /probe
//	internal/web           /metrics, /probe, /top, /targets and the landing page
//	internal/sink/clickhouse  the top processes, sampled into a ClickHouse table
//
// The tests here run the built binary end to end: main_test.go (flag
// errors, a live scrape linted by promtool, TLS distribution),
// fleet_test.go (a real Prometheus through /targets and /probe),
// web_config_test.go (TLS and basic auth), sink_test.go (the ClickHouse
// sink against Debian's clickhouse-server), fleet_bench_test.go (make
// bench-fleet) and sink_bench_test.go (make bench-sink).
package main
