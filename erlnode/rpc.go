// Remote calls through the node's rex server, with our own table of pending calls.

package erlnode

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// DefaultCallTimeout applies to a call whose context has no deadline.
const DefaultCallTimeout = 10 * time.Second

// ErrNotConnected is returned by calls made while the node is unreachable.
var ErrNotConnected = errors.New("not connected to the node")

// BadRPCError is the node's {badrpc, Reason}: the call reached the node and
// failed there (an exception, an undefined function).
type BadRPCError struct{ Reason string }

func (e *BadRPCError) Error() string { return "the node answered badrpc: " + e.Reason }

// calls is the table of calls waiting for a reply. ergo v1.999.224 has no RPC
// helper, so we speak rex's gen_server protocol ourselves.
type calls struct {
	mu      sync.Mutex
	pending map[etf.Ref]chan etf.Term
	counter atomic.Uint64
	salt    uint32
}

func newCalls() *calls {
	var salt [4]byte
	rand.Read(salt[:])
	return &calls{pending: make(map[etf.Ref]chan etf.Term), salt: binary.BigEndian.Uint32(salt[:])}
}

// makeRef builds a reference unique for the life of the process. ergo's own
// MakeRef keeps only 18 bits of its counter and repeats after 262,144 refs,
// which could match a late reply to the wrong call.
func (cs *calls) makeRef(self etf.Pid) etf.Ref {
	n := cs.counter.Add(1)
	return etf.Ref{
		Node:     self.Node,
		Creation: self.Creation,
		ID:       [5]uint32{uint32(n & 0x3ffff), uint32(n >> 18), cs.salt},
	}
}

func (cs *calls) add(ref etf.Ref) chan etf.Term {
	ch := make(chan etf.Term, 1)
	cs.mu.Lock()
	cs.pending[ref] = ch
	cs.mu.Unlock()
	return ch
}

func (cs *calls) remove(ref etf.Ref) {
	cs.mu.Lock()
	delete(cs.pending, ref)
	cs.mu.Unlock()
}

// deliver hands a reply to its waiting call; a reply nobody waits for (the
// call timed out) is dropped.
func (cs *calls) deliver(ref etf.Ref, reply etf.Term) {
	cs.mu.Lock()
	ch, ok := cs.pending[ref]
	delete(cs.pending, ref)
	cs.mu.Unlock()
	if ok {
		ch <- reply
	}
}

// inbox is the only process on the local node: the sender of every call to
// every target, and the receiver of every reply.
type inbox struct {
	gen.Server
	calls *calls
}

func (in *inbox) HandleInfo(_ *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	// rex answers a '$gen_call' with {Ref, Reply}.
	if t, ok := message.(etf.Tuple); ok && len(t) == 2 {
		if ref, ok := t[0].(etf.Ref); ok {
			in.calls.deliver(ref, t[1])
		}
	}
	return gen.ServerStatusOK
}

// Call runs module:function(args...) on the node: it sends {call, M, F, A,
// user} to rex and waits for the reply, the context's end, or the
// connection's end. It fails at once when there is no connection.
func (c *Client) Call(ctx context.Context, module, function string, args ...etf.Term) (etf.Term, error) {
	conn := c.current()
	if conn == nil {
		return nil, ErrNotConnected
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	self := c.local.inbox.Self()
	ref := c.local.calls.makeRef(self)
	ch := c.local.calls.add(ref)
	defer c.local.calls.remove(ref)

	request := etf.Tuple{
		etf.Atom("$gen_call"),
		etf.Tuple{self, ref},
		etf.Tuple{etf.Atom("call"), etf.Atom(module), etf.Atom(function), etf.List(args), etf.Atom("user")},
	}
	if err := c.local.inbox.Send(gen.ProcessID{Name: "rex", Node: c.cfg.Target}, request); err != nil {
		return nil, fmt.Errorf("calling %s:%s: %w", module, function, err)
	}
	select {
	case reply := <-ch:
		if t, ok := reply.(etf.Tuple); ok && len(t) == 2 && t[0] == etf.Atom("badrpc") {
			return nil, fmt.Errorf("calling %s:%s: %w", module, function, &BadRPCError{Reason: describeReason(t[1])})
		}
		return reply, nil
	case <-conn.down:
		return nil, fmt.Errorf("calling %s:%s: %w", module, function, ErrNotConnected)
	case <-ctx.Done():
		return nil, fmt.Errorf("calling %s:%s: %w", module, function, ctx.Err())
	}
}

// describeReason renders a badrpc reason briefly: the exception class and
// reason when it has the usual {'EXIT', {Reason, Stack}} shape.
func describeReason(t etf.Term) string {
	if tup, ok := t.(etf.Tuple); ok && len(tup) == 2 && tup[0] == etf.Atom("EXIT") {
		if inner, ok := tup[1].(etf.Tuple); ok && len(inner) == 2 {
			t = inner[0]
		} else {
			t = tup[1]
		}
	}
	if tup, ok := t.(etf.Tuple); ok && len(tup) > 0 {
		if a, ok := tup[0].(etf.Atom); ok {
			return string(a)
		}
	}
	if a, ok := t.(etf.Atom); ok {
		return string(a)
	}
	return describe(t)
}
