// The sink's own metrics, on the exporter's /metrics.

package clickhouse

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	rowsWrittenDesc = prometheus.NewDesc("beam_exporter_sink_rows_written_total",
		"Rows the ClickHouse sink has written: one per ranked process per ranking per sample.", nil, nil)
	rowsDroppedDesc = prometheus.NewDesc("beam_exporter_sink_rows_dropped_total",
		"Rows the ClickHouse sink gave up on: the oldest when its buffer was full (--sink.clickhouse.buffer-rows), or a batch ClickHouse refused three times.", nil, nil)
	bufferedDesc = prometheus.NewDesc("beam_exporter_sink_buffered_rows",
		"Rows sampled and not yet written to ClickHouse.", nil, nil)
	bufferLimitDesc = prometheus.NewDesc("beam_exporter_sink_buffered_rows_limit",
		"Most rows the ClickHouse sink buffers (--sink.clickhouse.buffer-rows).", nil, nil)
	insertsDesc = prometheus.NewDesc("beam_exporter_sink_inserts_total",
		"INSERT requests the ClickHouse sink has sent, written or not.", nil, nil)
	failuresDesc = prometheus.NewDesc("beam_exporter_sink_insert_failures_total",
		"Failed attempts to write to ClickHouse (the check of the table before the first insert included), by reason: unreachable, timeout, auth, table, not_clickhouse, rejected.", []string{"reason"}, nil)
	unansweredDesc = prometheus.NewDesc("beam_exporter_sink_unanswered_inserts_total",
		"INSERT requests sent that got no answer (the connection broke, or no answer in time): ClickHouse may have written them, and their batch is sent again. On a table without insert deduplication each may leave up to one batch of rows in the table twice.", nil, nil)
	rankingFailuresDesc = prometheus.NewDesc("beam_exporter_sink_ranking_failures_total",
		"Samples the ClickHouse sink could not take because a node could not be ranked (down, or too slow).", nil, nil)
	lastWriteDesc = prometheus.NewDesc("beam_exporter_sink_last_write_timestamp_seconds",
		"When the ClickHouse sink last wrote a batch, in Unix seconds; 0 before its first.", nil, nil)
)

// stats are the sink's counters; the buffer keeps its own.
type stats struct {
	inserts         atomic.Uint64
	failures        [len(failureNames)]atomic.Uint64
	unanswered      atomic.Uint64 // inserts that may have been written, unknown to us
	rankingFailures atomic.Uint64
	lastWrite       atomic.Int64 // Unix nanoseconds
}

// Describe sends every family the sink exports.
func (s *Sink) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rowsWrittenDesc, rowsDroppedDesc, bufferedDesc, bufferLimitDesc,
		insertsDesc, failuresDesc, unansweredDesc, rankingFailuresDesc, lastWriteDesc} {
		ch <- d
	}
}

// Collect builds the sink's metrics afresh from its counters.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	_, written, dropped, buffered := s.buf.counts()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(rowsWrittenDesc, float64(written))
	counter(rowsDroppedDesc, float64(dropped))
	gauge(bufferedDesc, float64(buffered))
	gauge(bufferLimitDesc, float64(s.buf.limit))
	counter(insertsDesc, float64(s.stats.inserts.Load()))
	for i := range s.stats.failures {
		counter(failuresDesc, float64(s.stats.failures[i].Load()), failure(i).String())
	}
	counter(unansweredDesc, float64(s.stats.unanswered.Load()))
	counter(rankingFailuresDesc, float64(s.stats.rankingFailures.Load()))
	gauge(lastWriteDesc, float64(s.stats.lastWrite.Load())/1e9)
}

// Counts reports the rows sampled, written, dropped and buffered so far:
// sampled is always the sum of the other three.
func (s *Sink) Counts() (sampled, written, dropped uint64, buffered int) {
	return s.buf.counts()
}
