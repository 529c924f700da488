// Peers that misbehave as a real node would not, for the tests: a Go stand-in
// for a node's side of the handshake, and a relay to a real node.
package erlnode

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

// peerTimeout bounds every wait on a fake peer, so that a test fails with a
// message rather than hanging when the exporter does something unexpected.
const peerTimeout = 30 * time.Second

// fakePeer listens where the exporter is told the node is (Config.DistPort).
// Its connections close at the end of the test.
type fakePeer struct {
	ln   net.Listener
	port int

	mu    sync.Mutex
	conns []net.Conn
}

func newFakePeer(t testing.TB) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePeer{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	return f
}

func (f *fakePeer) track(conn net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = append(f.conns, conn)
}

// accept takes the exporter's next connection.
func (f *fakePeer) accept() (net.Conn, error) {
	conn, err := f.ln.Accept()
	if err != nil {
		return nil, err
	}
	f.track(conn)
	conn.SetDeadline(time.Now().Add(peerTimeout))
	return conn, nil
}

// challenge plays the node's side up to and including its challenge:
// it reads the exporter's send_name, says "ok", and challenges as name
// with flags. It returns the exporter's send_name.
func challenge(conn net.Conn, name string, flags uint64, challenge uint32) ([]byte, error) {
	f := handshakeFraming{rw: conn, header: 2}
	sendName, err := f.read()
	if err != nil {
		return nil, fmt.Errorf("reading send_name: %w", err)
	}
	if err := f.write([]byte("sok")); err != nil {
		return nil, err
	}
	msg := []byte{'N'}
	msg = binary.BigEndian.AppendUint64(msg, flags)
	msg = binary.BigEndian.AppendUint32(msg, challenge)
	msg = binary.BigEndian.AppendUint32(msg, 1) // creation
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(name)))
	msg = append(msg, name...)
	return sendName, f.write(msg)
}

// acceptAs completes the node's side of a handshake as name with cookie and
// returns the connection, ready for distribution frames.
func (f *fakePeer) acceptAs(name, cookie string) (net.Conn, error) {
	conn, err := f.accept()
	if err != nil {
		return nil, err
	}
	const ours = 0x5eed
	if _, err := challenge(conn, name, advertisedFlags, ours); err != nil {
		return nil, err
	}
	hs := handshakeFraming{rw: conn, header: 2}
	reply, err := hs.read()
	if err != nil {
		return nil, fmt.Errorf("reading the challenge reply: %w", err)
	}
	if want := challengeDigest(cookie, ours); len(reply) != 21 || reply[0] != 'r' || !bytes.Equal(reply[5:], want[:]) {
		return nil, fmt.Errorf("unexpected challenge reply %x", reply)
	}
	ack := challengeDigest(cookie, binary.BigEndian.Uint32(reply[1:5]))
	if err := hs.write(append([]byte{'a'}, ack[:]...)); err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// relayResult is what a relay saw of the exporter.
type relayResult struct {
	challengeName string // the name in the real node's challenge, passed on
	replied       bool   // the exporter answered that challenge: it sent its digest
	err           error  // what stopped the relay otherwise
}

// startRelay stands between the exporter and the real node listening on
// nodePort, as an attacker would. It takes the exporter's connection, opens
// a handshake of its own to the real node with the exporter's send_name, and
// passes the real node's status and challenge back unchanged. If the
// exporter answers the challenge, the relay passes the answer on and from
// then on forwards bytes both ways, so the exporter is logged in to the real
// node through it.
func startRelay(t testing.TB, nodePort int) (port int, result <-chan relayResult) {
	t.Helper()
	f := newFakePeer(t)
	results := make(chan relayResult, 1)
	go func() {
		res, exp, node := relayHandshake(f, nodePort)
		results <- res
		if res.replied && res.err == nil {
			exp.SetDeadline(time.Time{})
			node.SetDeadline(time.Time{})
			go func() {
				io.Copy(node, exp)
				node.Close()
			}()
			io.Copy(exp, node)
			exp.Close()
		}
	}()
	return f.port, results
}

func relayHandshake(f *fakePeer, nodePort int) (res relayResult, exp, node net.Conn) {
	exp, err := f.accept()
	if err != nil {
		res.err = err
		return res, nil, nil
	}
	node, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", nodePort), peerTimeout)
	if err != nil {
		res.err = err
		return res, nil, nil
	}
	f.track(node)
	node.SetDeadline(time.Now().Add(peerTimeout))
	e := handshakeFraming{rw: exp, header: 2}
	n := handshakeFraming{rw: node, header: 2}
	// send_name to the node; its status and challenge to the exporter.
	for i, hop := range []struct{ from, to handshakeFraming }{{e, n}, {n, e}, {n, e}} {
		msg, err := hop.from.read()
		if err != nil {
			res.err = fmt.Errorf("relaying handshake message %d: %w", i, err)
			return res, nil, nil
		}
		if i == 2 && len(msg) >= 19 {
			nameLen := int(binary.BigEndian.Uint16(msg[17:19]))
			res.challengeName = string(msg[19:min(len(msg), 19+nameLen)])
		}
		if err := hop.to.write(msg); err != nil {
			res.err = err
			return res, nil, nil
		}
	}
	// The exporter's next message would carry its digest of the node's
	// challenge: with it, the relay could log in to the node.
	reply, err := e.read()
	if errors.Is(err, io.EOF) {
		// Closed without sending a byte: give up on the node too.
		node.Close()
		return res, nil, nil
	}
	if err != nil {
		res.err = fmt.Errorf("after the challenge: %w", err)
		return res, nil, nil
	}
	res.replied = true
	if err := n.write(reply); err != nil {
		res.err = err
		return res, nil, nil
	}
	ack, err := n.read()
	if err != nil {
		res.err = fmt.Errorf("reading the node's ack: %w", err)
		return res, nil, nil
	}
	if err := e.write(ack); err != nil {
		res.err = err
	}
	return res, exp, node
}

// waitResult waits for a peer goroutine's result.
func waitResult[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(peerTimeout):
		t.Fatalf("the fake peer did not finish within %s", peerTimeout)
		panic("unreachable")
	}
}

// eventually waits until cond holds: for state that changes without an
// event to wait on, such as a counter.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer collects a Client's log lines.
type logBuffer struct{ testkit.LockedBuffer }

func (l *logBuffer) logger() log.Logger { return log.NewLogfmtLogger(l) }

// connectCtx is the context for one connection attempt in the tests.
func connectCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	t.Cleanup(cancel)
	return ctx
}
