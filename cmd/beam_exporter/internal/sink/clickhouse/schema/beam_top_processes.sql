-- beam_exporter's ClickHouse sink: the table of top processes, for ClickHouse
-- 22.3 or later. Knock's schema ("BEAM Metrics in ClickHouse"): one row per
-- ranked process per ranking per sample, named by pid, registered name,
-- initial call and current function, with its memory, message queue and
-- reductions, and the pod and deployment it ran in.
--
-- Create it with --sink.clickhouse.create-table, which picks this file on
-- ClickHouse 22.3 or later (and the portable variant before), or by hand:
--
--   clickhouse-client --queries-file beam_top_processes.sql
--
-- To use another database or table name, edit default.beam_top_processes
-- below and give the sink the same --sink.clickhouse.database and
-- --sink.clickhouse.table.
CREATE TABLE IF NOT EXISTS default.beam_top_processes
(
    -- When the ranking was taken, by the exporter's clock, in UTC. Every row
    -- of one sample of one node has the same timestamp.
    timestamp          DateTime64(3, 'UTC'),
    -- Where the node runs: --sink.clickhouse.deployment and
    -- --sink.clickhouse.pod (in Kubernetes, from the pod's name by default).
    -- Few distinct values over a long time: LowCardinality stores each once
    -- per part and compares them as integers.
    deployment         LowCardinality(String),
    pod                LowCardinality(String),
    -- The node's name, name@host: what tells nodes apart in fleet mode,
    -- where one exporter writes the rows of many nodes.
    node               LowCardinality(String),
    -- The ranking: memory, message_queue_len or reductions.
    metric             LowCardinality(String),
    -- 1 is the largest; at most --collector.processes.top-n.
    rank               UInt16,
    -- What the process is ranked by: bytes, messages, or reductions per
    -- second over the collector's window.
    value              Float64,
    -- As the node writes it, <0.91.0>: list_to_pid/1 on that node finds it.
    pid                String,
    -- The process label of the beam_process_* metrics: registered name,
    -- proc_lib label, '$initial_call' or initial call; "exited" for a
    -- process gone before it was described (its details are then empty).
    name               LowCardinality(String),
    registered_name    LowCardinality(String),
    initial_call       LowCardinality(String),
    current_function   LowCardinality(String),
    -- process_info(P, memory | message_queue_len | reductions), read right
    -- after the ranking; reductions is the process's total.
    memory             UInt64,
    message_queue_len  UInt64,
    reductions         UInt64,
    -- Knock's breakdown of a process's memory (heap, stack, binaries...).
    -- The probe reads none of it yet, so the sink leaves it empty.
    memory_details     Map(LowCardinality(String), UInt64)
)
ENGINE = MergeTree
-- A partition a day: the TTL below drops whole days.
PARTITION BY toDate(timestamp)
-- Knock's reasoning: every question starts from a deployment, usually
-- narrows to a pod, and covers a span of time, so those lead the sorting
-- key and a query over one pod reads only that pod's granules, in time
-- order. node follows pod for fleet mode.
ORDER BY (deployment, pod, node, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY
-- Keep the hashes of the last 1000 inserted blocks, so that a batch the
-- sink sends again after a timeout (byte for byte the same) is not written
-- twice.
SETTINGS non_replicated_deduplication_window = 1000
