package clickhouse

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/collector"
)

// someRows are n rows of one node, told apart by rank.
func someRows(n int, from int) []row {
	out := make([]row, n)
	for i := range out {
		out[i] = row{time: time.Unix(1_700_000_000, 0), node: "app@host", metric: metricMemory, rank: from + i,
			p: collector.TopProcess{Pid: fmt.Sprintf("<0.%d.0>", from+i)}}
	}
	return out
}

// checkSum fails when rows went missing or were counted twice.
func checkSum(t *testing.T, b *buffer) {
	t.Helper()
	added, written, dropped, buffered := b.counts()
	if added != written+dropped+uint64(buffered) {
		t.Fatalf("added %d != written %d + dropped %d + buffered %d", added, written, dropped, buffered)
	}
	if buffered > b.limit {
		t.Fatalf("buffered %d, more than the limit %d", buffered, b.limit)
	}
}

func TestBufferDropsOldestFirst(t *testing.T) {
	b := newBuffer(8) // batches of 2
	b.add(someRows(6, 1))
	checkSum(t, b)
	b.add(someRows(4, 7)) // 10 > 8: the oldest two go
	checkSum(t, b)
	if _, _, dropped, buffered := b.counts(); dropped != 2 || buffered != 8 {
		t.Fatalf("dropped %d, buffered %d", dropped, buffered)
	}
	first := b.take(unixSeconds)
	if first.rows[0].rank != 3 || len(first.rows) != 2 {
		t.Fatalf("the first batch starts at rank %d with %d rows, want the oldest kept (3) and 2", first.rows[0].rank, len(first.rows))
	}

	// While an insert sends the oldest batch, the queued rows behind it go
	// instead, and the batch survives to be resent as it was.
	b.add(someRows(3, 11))
	checkSum(t, b)
	b.done(first, false, false)
	again := b.take(unixSeconds)
	if again != first || !bytes.Equal(again.body, first.body) {
		t.Fatal("a failed batch was not resent as it was")
	}
	b.done(again, false, false)

	// A pending batch nobody is sending is the oldest, and goes whole.
	b.add(someRows(1, 14))
	checkSum(t, b)
	if next := b.take(unixSeconds); next == first || next.rows[0].rank == 3 {
		t.Fatalf("the pending batch was not dropped: %+v", next.rows)
	} else {
		b.done(next, true, false)
	}
	checkSum(t, b)
	if _, written, _, _ := b.counts(); written != 2 {
		t.Fatalf("written %d, want 2", written)
	}
}

func TestBufferDropsABatchRefusedThreeTimes(t *testing.T) {
	b := newBuffer(100)
	b.add(someRows(3, 1))
	for i := 1; i <= maxRejections; i++ {
		p := b.take(unixSeconds)
		if p == nil {
			t.Fatalf("no batch at try %d", i)
		}
		dropped := b.done(p, false, true)
		if want := map[bool]int{true: 3, false: 0}[i == maxRejections]; dropped != want {
			t.Fatalf("try %d dropped %d rows, want %d", i, dropped, want)
		}
	}
	checkSum(t, b)
	if p := b.take(unixSeconds); p != nil {
		t.Fatalf("the refused batch is still there: %+v", p.rows)
	}
}

// A change of the table's timestamp type encodes the batch again.
func TestBufferEncodesForTheTable(t *testing.T) {
	b := newBuffer(100)
	b.add(someRows(1, 1))
	p := b.take(unixSeconds)
	if !bytes.Contains(p.body, []byte(`"timestamp":1700000000,`)) {
		t.Fatalf("seconds: %s", p.body)
	}
	b.done(p, false, false)
	p = b.take(isoMillis)
	if !bytes.Contains(p.body, []byte(`"timestamp":"2023-11-14T22:13:20.000Z",`)) {
		t.Fatalf("milliseconds: %s", p.body)
	}
}
