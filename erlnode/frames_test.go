package erlnode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// chunkReader hands out its data a few bytes at a time and checks that the
// frame reader never offers room for more than its growth rule allows.
type chunkReader struct {
	t     *testing.T
	data  []byte
	chunk int
	read  int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if limit := max(firstFrameBuffer, 2*r.read); r.read+len(p) > limit {
		r.t.Fatalf("after %d bytes the buffer has room up to %d, over %d", r.read, r.read+len(p), limit)
	}
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:min(r.chunk, len(r.data))])
	r.data = r.data[n:]
	r.read += n
	return n, nil
}

func TestReadFrame(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	for _, chunk := range []int{1 << 10, 3000, 64 << 10} {
		got, err := readFrame(&chunkReader{t: t, data: data, chunk: chunk}, len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("chunks of %d: %d bytes, %v", chunk, len(got), err)
		}
	}
	if _, err := readFrame(&chunkReader{t: t, data: data[:10], chunk: 10}, 1<<30); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a frame cut short: %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

// connectToFake connects a Client to a fake peer that completes the
// handshake, and returns the peer's end of the connection.
func connectToFake(t *testing.T, logs *logBuffer) (*Client, net.Conn) {
	t.Helper()
	target := erltest.UniqueName("frames") + "@localhost"
	peer := newFakePeer(t)
	type accepted struct {
		conn net.Conn
		err  error
	}
	done := make(chan accepted, 1)
	go func() {
		conn, err := peer.acceptAs(target, "cookie")
		done <- accepted{conn, err}
	}()
	client, err := New(Config{Target: target, Cookie: "cookie", DistPort: peer.port, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	if err := client.EnsureConnected(connectCtx(t)); err != nil {
		t.Fatal(err)
	}
	a := waitResult(t, done)
	if a.err != nil {
		t.Fatalf("fake peer: %v", a.err)
	}
	return client, a.conn
}

// TestFrameCostsWhatArrived: a peer that announces a large frame and sends
// ten bytes of it costs the exporter a small buffer. A frame over the cap
// ends the connection before anything is read; one at the cap has its ten
// bytes read into a buffer that has not grown past its first size. Not
// parallel, so that other tests do not allocate while the heap is measured.
func TestFrameCostsWhatArrived(t *testing.T) {
	const bound = 1 << 20
	for _, tc := range []struct {
		name     string
		announce uint32
		refused  bool
	}{
		{"1 GiB, over the cap", 1 << 30, true},
		{"the cap", MaxFrameSize, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			client, peer := connectToFake(t, &logs)
			lc := client.current()
			if lc == nil {
				t.Fatal("not connected")
			}
			frame := binary.BigEndian.AppendUint32(nil, tc.announce)
			frame = append(frame, "0123456789"...)

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			read := lc.dist.stats.bytesIn.Load()
			if _, err := peer.Write(frame); err != nil {
				t.Fatal(err)
			}
			if tc.refused {
				select {
				case <-lc.down:
				case <-time.After(peerTimeout):
					t.Fatal("the connection outlived a frame over the cap")
				}
			} else {
				eventually(t, peerTimeout, "the exporter to read the ten bytes", func() bool {
					return lc.dist.stats.bytesIn.Load()-read == uint64(len(frame))
				})
			}
			runtime.GC()
			runtime.ReadMemStats(&after)

			// TotalAlloc counts every allocation, freed or not; HeapAlloc
			// what is still held, a pending frame's buffer included.
			allocated := after.TotalAlloc - before.TotalAlloc
			held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("announced %d bytes, sent 10: %d bytes allocated, heap %+d bytes", tc.announce, allocated, held)
			if allocated > bound || held > bound {
				t.Errorf("allocated %d and held %+d bytes, want at most %d", allocated, held, bound)
			}
			if tc.refused {
				if lines := logs.Lines("lost the connection", fmt.Sprintf("over the %d byte limit", MaxFrameSize)); len(lines) != 1 {
					t.Errorf("want one line on the refused frame; log:\n%s", logs.String())
				}
			} else if !client.Up() {
				t.Error("a frame within the cap ended the connection")
			}
		})
	}
}

// TestFrameAtCapIsRead: a frame of exactly the cap is a frame like any
// other. It carries a message for nobody, so it is dropped, and the
// connection goes on.
func TestFrameAtCapIsRead(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	client, peer := connectToFake(t, &logs)
	lc := client.current()
	frame := make([]byte, 4+MaxFrameSize)
	binary.BigEndian.PutUint32(frame, MaxFrameSize)
	copy(frame[4:], []byte{passThrough, versionMagic}) // and then no term
	go peer.Write(frame)
	eventually(t, peerTimeout, "the frame to be read and dropped", func() bool {
		return strings.Contains(logs.String(), "cannot be decoded")
	})
	if n := lc.dist.stats.msgsIn.Load(); n != 1 || !client.Up() {
		t.Errorf("%d frames read, connection up %v; want 1, true; log:\n%s", n, client.Up(), logs.String())
	}
}
