// Remote calls through the node's rex server, each waiting on its own connection for its reply.

package erlnode

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
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

// refs makes the references that tag calls. ergo v1.999.224 has no RPC
// helper, so we speak rex's gen_server protocol ourselves; the calls waiting
// for a reply are kept by the connection they went out on (proto.go).
type refs struct {
	counter atomic.Uint64
	salt    uint32
}

func newRefs() *refs {
	var salt [4]byte
	rand.Read(salt[:])
	return &refs{salt: binary.BigEndian.Uint32(salt[:])}
}

// make builds a reference unique for the life of the process. ergo's own
// MakeRef keeps only 18 bits of its counter and repeats after 262,144 refs,
// which could match a late reply to the wrong call.
func (rs *refs) make(self etf.Pid) etf.Ref {
	n := rs.counter.Add(1)
	return etf.Ref{
		Node:     self.Node,
		Creation: self.Creation,
		ID:       [5]uint32{uint32(n & 0x3ffff), uint32(n >> 18), rs.salt},
	}
}

// caller is the local node's one process. Its pid is where every call says
// the reply should go, and what the probe's session monitors; the replies
// themselves never reach its mailbox (see distProto.Serve).
type caller struct {
	gen.Server
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
	self := c.local.self.Self()
	ref := c.local.refs.make(self)
	// The call goes out on the connection whose handshake checked the
	// node's name, and only a reply on that same connection answers it.
	ch := conn.dist.expect(ref)
	defer conn.dist.forgetCall(ref)

	request := etf.Tuple{
		etf.Atom("$gen_call"),
		etf.Tuple{self, ref},
		etf.Tuple{etf.Atom("call"), etf.Atom(module), etf.Atom(function), etf.List(args), etf.Atom("user")},
	}
	if err := conn.dist.sendReg("rex", request); err != nil {
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
