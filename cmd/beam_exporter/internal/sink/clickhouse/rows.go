// Rows: one per ranked process per ranking of a snapshot, and their JSONEachRow text.

package clickhouse

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/beam-exporter/beam_exporter/collector"
)

// The rankings, as the metric column names them: the process_info items
// they rank by, as Knock's table does.
const (
	metricMemory       = "memory"
	metricMessageQueue = "message_queue_len"
	metricReductions   = "reductions"
)

// row is one ranked process of one ranking, as the table stores it.
type row struct {
	time       time.Time
	deployment string
	pod        string
	node       string
	metric     string
	rank       int
	value      float64
	p          collector.TopProcess
}

// rowsOf flattens a snapshot into rows, all stamped with the snapshot's time:
// the identity of a row is (node, timestamp, metric, rank).
func rowsOf(snap collector.TopSnapshot, node, deployment, pod string) []row {
	out := make([]row, 0, len(snap.Memory)+len(snap.MessageQueue)+len(snap.Reductions))
	for _, ranking := range []struct {
		metric string
		ranks  []collector.TopProcess
	}{
		{metricMemory, snap.Memory},
		{metricMessageQueue, snap.MessageQueue},
		{metricReductions, snap.Reductions},
	} {
		for _, p := range ranking.ranks {
			out = append(out, row{
				time: snap.Time, deployment: deployment, pod: pod, node: node,
				metric: ranking.metric, rank: p.Rank, value: p.Value, p: p,
			})
		}
	}
	return out
}

// timeFormat is how a table's timestamp column takes a time.
type timeFormat int

const (
	// unixSeconds suits DateTime, the portable variant: an integer reads
	// the same whatever the column's or the server's time zone.
	unixSeconds timeFormat = iota
	// isoMillis suits DateTime64: RFC 3339 in UTC with milliseconds, read
	// with date_time_input_format=best_effort (ClickHouse 19.x and later,
	// as every release with DateTime64 is).
	isoMillis
)

// jsonRow is a row as JSONEachRow reads it. The figures are integers, as
// their columns are; the memory_details map is left to its default.
type jsonRow struct {
	Timestamp          json.RawMessage `json:"timestamp"`
	Deployment         string          `json:"deployment"`
	Pod                string          `json:"pod"`
	Node               string          `json:"node"`
	Metric             string          `json:"metric"`
	Rank               int             `json:"rank"`
	Value              float64         `json:"value"`
	Pid                string          `json:"pid"`
	Name               string          `json:"name"`
	RegisteredName     string          `json:"registered_name"`
	InitialCall        string          `json:"initial_call"`
	CurrentFunction    string          `json:"current_function"`
	Memory             uint64          `json:"memory"`
	MessageQueueLength uint64          `json:"message_queue_len"`
	Reductions         uint64          `json:"reductions"`
}

// encodeRows writes rows as JSONEachRow, one object a line.
func encodeRows(rows []row, format timeFormat) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // pids as the node writes them: <0.91.0>
	for _, r := range rows {
		var ts []byte
		if format == isoMillis {
			ts = strconv.AppendQuote(nil, r.time.UTC().Format("2006-01-02T15:04:05.000Z"))
		} else {
			ts = strconv.AppendInt(nil, r.time.Unix(), 10)
		}
		value := r.value
		if math.IsNaN(value) || math.IsInf(value, 0) {
			value = 0 // JSON has neither; the probe sends neither
		}
		// encoding/json cannot fail on this struct of strings and numbers.
		_ = enc.Encode(jsonRow{
			Timestamp: ts, Deployment: r.deployment, Pod: r.pod, Node: r.node, Metric: r.metric,
			Rank: r.rank, Value: value, Pid: r.p.Pid, Name: r.p.Name, RegisteredName: r.p.RegisteredName,
			InitialCall: r.p.InitialCall, CurrentFunction: r.p.CurrentFunction,
			Memory: count(r.p.MemoryBytes), MessageQueueLength: count(r.p.MessageQueueLength), Reductions: count(r.p.Reductions),
		})
	}
	return buf.Bytes()
}

// count is a figure the probe reads as a non-negative integer.
func count(v float64) uint64 {
	if !(v > 0) {
		return 0
	}
	if v >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(v)
}
