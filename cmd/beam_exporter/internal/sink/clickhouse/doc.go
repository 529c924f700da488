// Package clickhouse is the ClickHouse sink: every --sink.clickhouse.interval
// it takes each watched node's ranking of top processes (through the
// processes collector's tier cache, so scrapes and the sink share one scan)
// and writes one row per ranked process per ranking to a ClickHouse table,
// over ClickHouse's HTTP interface, in batches. Rows wait in a bounded
// buffer while ClickHouse is away; the oldest are dropped first, and
// counted.
//
// Files, in the order rows flow through them:
//
//	flags.go    the --sink.clickhouse.* flags, the password from a file or the environment
//	sink.go     New (checks the server and the table), Start: sampling rounds and the writer
//	rows.go     a snapshot as rows, and rows as JSONEachRow
//	buffer.go   the bounded buffer and its frozen batches, resent byte for byte
//	schema.go   the server's version, the table's fit, creating the right variant
//	schema/     the table for current ClickHouse (Knock's) and the portable one (18.16)
//	server.go   requests to the HTTP interface, and what their failures mean
//	metrics.go  beam_exporter_sink_* on the exporter's /metrics
//
// chtest starts Debian's clickhouse-server for the tests.
package clickhouse
