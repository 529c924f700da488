-- beam_exporter's ClickHouse sink: the table of top processes, portable
-- variant, for ClickHouse before 22.3 (Debian bookworm's 18.16 among them).
-- The same columns as beam_top_processes.sql with what 18.16 lacks left out:
--
--   * timestamp is DateTime, whole seconds (no DateTime64). The sink writes
--     at most one sample of a node per second, so rows stay distinct.
--   * String for LowCardinality(String), which 18.16 has only behind an
--     experimental setting.
--   * no memory_details column (no Map type).
--   * no TTL: drop old days by hand, a partition at a time
--     (ALTER TABLE default.beam_top_processes DROP PARTITION '2026-01-31').
--   * no insert deduplication on a MergeTree table: a batch sent again
--     after a timeout that ClickHouse had in fact written is written twice.
--     observability.md gives the query that counts each row once.
--
-- Create it with --sink.clickhouse.create-table, which picks this file
-- before ClickHouse 22.3, or by hand:
--
--   clickhouse-client --multiquery < beam_top_processes_portable.sql
--
-- To use another database or table name, edit default.beam_top_processes
-- below and give the sink the same --sink.clickhouse.database and
-- --sink.clickhouse.table.
CREATE TABLE IF NOT EXISTS default.beam_top_processes
(
    timestamp          DateTime('UTC'),
    deployment         String,
    pod                String,
    node               String,
    metric             String,
    rank               UInt16,
    value              Float64,
    pid                String,
    name               String,
    registered_name    String,
    initial_call       String,
    current_function   String,
    memory             UInt64,
    message_queue_len  UInt64,
    reductions         UInt64
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (deployment, pod, node, timestamp)
