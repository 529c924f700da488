package clickhouse

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/collector"
)

func TestRowsOfASnapshot(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 59, 4, 790_000_000, time.UTC)
	hog := collector.TopProcess{Rank: 1, Value: 26810472, Pid: "<0.91.0>", Name: "order_sink", RegisteredName: "order_sink",
		CurrentFunction: "gen_server:loop/7", InitialCall: "order_sink:init/1",
		MemoryBytes: 26810472, MessageQueueLength: 200000, Reductions: 3137298, Time: at}
	queued, busy := hog, hog
	queued.Value, busy.Value = 200000, 1234.5
	gone := collector.TopProcess{Rank: 2, Value: 10, Pid: "<0.92.0>", Name: "exited", Exited: true, Time: at}
	snap := collector.TopSnapshot{Time: at, Memory: []collector.TopProcess{hog, gone}, MessageQueue: []collector.TopProcess{queued},
		Reductions: []collector.TopProcess{busy}}

	rows := rowsOf(snap, "app@host", "shop", "shop-7d4b9c8f6d-x2x9k")
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4", len(rows))
	}
	lines := strings.Split(strings.TrimSuffix(string(encodeRows(rows, isoMillis)), "\n"), "\n")
	want := []string{
		`{"timestamp":"2026-11-23T12:59:04.790Z","deployment":"shop","pod":"shop-7d4b9c8f6d-x2x9k","node":"app@host","metric":"memory","rank":1,"value":26810472,"pid":"<0.91.0>","name":"order_sink","registered_name":"order_sink","initial_call":"order_sink:init/1","current_function":"gen_server:loop/7","memory":26810472,"message_queue_len":200000,"reductions":3137298}`,
		`{"timestamp":"2026-11-23T12:59:04.790Z","deployment":"shop","pod":"shop-7d4b9c8f6d-x2x9k","node":"app@host","metric":"memory","rank":2,"value":10,"pid":"<0.92.0>","name":"exited","registered_name":"","initial_call":"","current_function":"","memory":0,"message_queue_len":0,"reductions":0}`,
		`{"timestamp":"2026-11-23T12:59:04.790Z","deployment":"shop","pod":"shop-7d4b9c8f6d-x2x9k","node":"app@host","metric":"message_queue_len","rank":1,"value":200000,"pid":"<0.91.0>","name":"order_sink","registered_name":"order_sink","initial_call":"order_sink:init/1","current_function":"gen_server:loop/7","memory":26810472,"message_queue_len":200000,"reductions":3137298}`,
		`{"timestamp":"2026-11-23T12:59:04.790Z","deployment":"shop","pod":"shop-7d4b9c8f6d-x2x9k","node":"app@host","metric":"reductions","rank":1,"value":1234.5,"pid":"<0.91.0>","name":"order_sink","registered_name":"order_sink","initial_call":"order_sink:init/1","current_function":"gen_server:loop/7","memory":26810472,"message_queue_len":200000,"reductions":3137298}`,
	}
	for i := range want {
		if i >= len(lines) || lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[min(i, len(lines)-1)], want[i])
		}
	}
}

// What the node sends is text of its choosing; every row stays one valid
// JSON object, and figures stay numbers.
func TestRowsAreValidJSON(t *testing.T) {
	odd := collector.TopProcess{Rank: 1, Value: math.NaN(), Pid: "<0.1.0>", Name: "a\"b\\c\nd\x00\xff'", MemoryBytes: -1, Reductions: math.Inf(1)}
	body := encodeRows(rowsOf(collector.TopSnapshot{Time: time.Unix(0, 0), Memory: []collector.TopProcess{odd}}, "n@h", "", ""), unixSeconds)
	if strings.Count(string(body), "\n") != 1 {
		t.Fatalf("not one line: %q", body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if m["value"] != 0.0 || m["memory"] != 0.0 || m["reductions"] != float64(math.MaxUint64) {
		t.Errorf("figures %v %v %v", m["value"], m["memory"], m["reductions"])
	}
}
