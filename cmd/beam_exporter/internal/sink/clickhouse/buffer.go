// The bounded buffer between sampling and inserting: oldest rows dropped first, every drop counted.

package clickhouse

import "sync"

// maxBatch bounds the rows of one INSERT: ClickHouse prefers few large
// inserts, and a batch this size is one block, deduplicated as one.
const maxBatch = 10_000

// maxRejections is how often ClickHouse may refuse a batch for a reason of
// its own (not an outage, not the credentials, not the table) before the
// batch is dropped, so that one bad batch cannot hold up the rest.
const maxRejections = 3

// buffer holds the rows sampled and not yet written, at most limit of them.
//
// The oldest rows form a batch once an insert takes them, and that batch is
// sent again, byte for byte, until ClickHouse takes it or it is dropped:
// a batch whose first insert did reach ClickHouse, unknown to the sink, is
// then deduplicated as a block by a table that keeps insert hashes (the
// shipped schema for current ClickHouse does). A row is never part of two
// different batches.
type buffer struct {
	limit int
	batch int // rows per batch: a quarter of the limit, so a dropped batch frees room for a while

	mu      sync.Mutex
	pending *batch // the oldest rows, frozen into a batch; nil when none is
	queue   []row  // the rows behind it, oldest first
	added   uint64
	dropped uint64
	written uint64
}

// batch is a frozen run of the oldest rows and their encoded body.
type batch struct {
	rows       []row
	body       []byte
	format     timeFormat
	sending    bool // an insert is under way; the batch must not be dropped
	rejections int
}

func newBuffer(limit int) *buffer {
	return &buffer{limit: limit, batch: max(1, min(maxBatch, limit/4))}
}

// add queues rows, dropping the oldest rows while there are more than the
// limit: the pending batch as a whole, unless an insert is sending it, then
// the oldest queued rows. A sending batch is at most the limit, so the
// limit always holds.
func (b *buffer) add(rows []row) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.added += uint64(len(rows))
	b.queue = append(b.queue, rows...)
	for b.lenLocked() > b.limit {
		if b.pending != nil && !b.pending.sending {
			b.dropped += uint64(len(b.pending.rows))
			b.pending = nil
			continue
		}
		n := min(len(b.queue), b.lenLocked()-b.limit)
		if n == 0 {
			break // cannot happen: a batch is at most a quarter of the limit
		}
		b.dropped += uint64(n)
		// Reslicing leaves the dropped rows to the next growth of the
		// queue, which copies only the live ones.
		b.queue = b.queue[n:]
	}
}

// take returns the batch to send next, frozen and marked as sending, or nil
// when nothing is buffered. The body is encoded once, for format; only a
// change of table (another timestamp type) encodes it again.
func (b *buffer) take(format timeFormat) *batch {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		if len(b.queue) == 0 {
			return nil
		}
		n := min(len(b.queue), b.batch)
		b.pending = &batch{rows: b.queue[:n:n]}
		b.queue = b.queue[n:]
	}
	p := b.pending
	if p.body == nil || p.format != format {
		p.body, p.format = encodeRows(p.rows, format), format
	}
	p.sending = true
	return p
}

// done records the outcome of sending p. A written batch leaves the
// buffer; a failed one stays pending, to be sent as it is, unless
// ClickHouse has now rejected it maxRejections times: then it is dropped.
// It returns how many rows were dropped.
func (b *buffer) done(p *batch, written bool, rejection bool) (droppedRows int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p.sending = false
	if b.pending != p {
		return 0 // cannot happen: a sending batch is never dropped
	}
	switch {
	case written:
		b.written += uint64(len(p.rows))
		b.pending = nil
	case rejection:
		p.rejections++
		if p.rejections >= maxRejections {
			b.dropped += uint64(len(p.rows))
			b.pending = nil
			return len(p.rows)
		}
	}
	return 0
}

// counts reports the rows added, written, dropped and buffered so far;
// added is always the sum of the other three.
func (b *buffer) counts() (added, written, dropped uint64, buffered int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.added, b.written, b.dropped, b.lenLocked()
}

func (b *buffer) lenLocked() int {
	n := len(b.queue)
	if b.pending != nil {
		n += len(b.pending.rows)
	}
	return n
}
