// The distribution protocol after the handshake: framing, ticks, and the
// control messages a hidden, read-only client needs.

package erlnode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
)

// Control message operations (erl_dist_protocol).
const (
	opLink                 = 1
	opSend                 = 2
	opExit                 = 3
	opUnlink               = 4
	opRegSend              = 6
	opExit2                = 8
	opMonitorP             = 19
	opDemonitorP           = 20
	opMonitorPExit         = 21
	opSendSender           = 22
	opPayloadExit          = 24
	opPayloadExit2         = 26
	opPayloadMonitorPExit  = 28
	opUnlinkID             = 35
	opUnlinkIDAck          = 36
	passThrough            = 112
	versionMagic           = 131
	maxPacketSize          = 256 << 20
	defaultNetTickTime     = 60 * time.Second
	tickIntervalsPerPeriod = 4
)

var errUnsupported = errors.New("not supported by a read-only exporter")

// distProto implements ergo's node.ProtoInterface. ergo's own proto closes
// the connection on any control message it does not know, such as the
// UNLINK_ID that OTP 26 and later send, and it cannot be extended from
// outside its package, hence this one.
type distProto struct {
	// netTickTime is the target's net_ticktime: a connection silent for that
	// long is dead, and we tick four times per period so the node keeps us.
	netTickTime time.Duration
	// closed, if set, learns that a connection ended, and why.
	closed func(c *connection, err error)
	logf   func(format string, args ...any)

	mu     sync.Mutex
	latest map[string]*connection // the newest connection to each peer
}

// latestTo returns the newest connection set up to peer, if any.
func (p *distProto) latestTo(peer string) *connection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest[peer]
}

var _ node.ProtoInterface = (*distProto)(nil)

type connection struct {
	proto     *distProto
	conn      lib.NetReadWriter
	nodename  string
	peer      string
	peerFlags uint64
	creation  uint32

	ctx    context.Context
	cancel context.CancelCauseFunc
	// terminated closes once ergo has forgotten the connection: only then
	// may the next connection to the peer be registered.
	terminated chan struct{}

	writeMu   sync.Mutex
	lastWrite atomic.Int64 // unix nanoseconds
	stats     struct{ bytesIn, bytesOut, msgsIn, msgsOut atomic.Uint64 }
	warnOnce  sync.Once
}

var _ node.ConnectionInterface = (*connection)(nil)

func (p *distProto) Init(ctx context.Context, conn lib.NetReadWriter, nodename string, details node.HandshakeDetails) (node.ConnectionInterface, error) {
	peer, ok := details.Custom.(peerDetails)
	if !ok {
		return nil, errors.New("the connection was not set up by the exporter's handshake")
	}
	c := &connection{
		proto:     p,
		conn:      conn,
		nodename:  nodename,
		peer:      details.Name,
		peerFlags: peer.flags,
		creation:  details.Creation,

		terminated: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancelCause(ctx)
	p.mu.Lock()
	if p.latest == nil {
		p.latest = map[string]*connection{}
	}
	p.latest[c.peer] = c
	p.mu.Unlock()
	return c, nil
}

func (p *distProto) Serve(ci node.ConnectionInterface, router node.CoreRouter) {
	c := ci.(*connection)
	go c.ticker()
	err := c.readLoop(router)
	c.cancel(err)
	if p.closed != nil {
		p.closed(c, err)
	}
}

// Terminate is called after ergo unregistered the connection.
func (p *distProto) Terminate(ci node.ConnectionInterface) {
	c := ci.(*connection)
	c.cancel(errors.New("terminated"))
	close(c.terminated)
}

// alive reports whether the connection is still up.
func (c *connection) alive() bool { return c.ctx.Err() == nil }

func (p *distProto) tickTime() time.Duration {
	if p.netTickTime <= 0 {
		return defaultNetTickTime
	}
	return p.netTickTime
}

// ticker sends an empty packet whenever we have been quiet for a quarter of
// the tick period, as net_kernel does, so the node does not drop us.
func (c *connection) ticker() {
	interval := c.proto.tickTime() / tickIntervalsPerPeriod
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			if time.Since(time.Unix(0, c.lastWrite.Load())) >= interval {
				if err := c.write([]byte{0, 0, 0, 0}); err != nil {
					c.cancel(fmt.Errorf("sending tick: %w", err))
					return
				}
			}
		}
	}
}

func (c *connection) write(packet []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ctx.Err(); err != nil {
		return context.Cause(c.ctx)
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.proto.tickTime() / tickIntervalsPerPeriod))
	_, err := c.conn.Write(packet)
	if err != nil {
		c.cancel(fmt.Errorf("writing to %s: %w", c.peer, err))
		return err
	}
	c.lastWrite.Store(time.Now().UnixNano())
	c.stats.bytesOut.Add(uint64(len(packet)))
	return nil
}

// readLoop reads packets until the connection fails. The node ticks at least
// four times per net tick period, so a connection that stays silent for a
// whole period is dead, even when TCP has not noticed (a frozen node, a
// half-open connection).
func (c *connection) readLoop(router node.CoreRouter) error {
	var size [4]byte
	for {
		if c.ctx.Err() != nil {
			return context.Cause(c.ctx)
		}
		c.conn.SetReadDeadline(time.Now().Add(c.proto.tickTime()))
		if _, err := io.ReadFull(c.conn, size[:]); err != nil {
			return fmt.Errorf("reading from %s: %w", c.peer, err)
		}
		n := binary.BigEndian.Uint32(size[:])
		if n == 0 {
			continue // a tick
		}
		if n > maxPacketSize {
			return fmt.Errorf("packet of %d bytes from %s exceeds the %d byte limit", n, c.peer, maxPacketSize)
		}
		packet := make([]byte, n)
		if _, err := io.ReadFull(c.conn, packet); err != nil {
			return fmt.Errorf("reading from %s: %w", c.peer, err)
		}
		c.stats.bytesIn.Add(uint64(4 + n))
		c.stats.msgsIn.Add(1)
		control, payload, err := decodePacket(packet)
		if err != nil {
			// One undecodable message is not worth the connection: the call
			// that waited for it times out and reports itself.
			c.warnOnce.Do(func() { c.logf("dropping a message from %s that cannot be decoded: %v", c.peer, err) })
			continue
		}
		if err := c.handle(router, control, payload); err != nil {
			return err
		}
	}
}

func (c *connection) logf(format string, args ...any) {
	if c.proto.logf != nil {
		c.proto.logf(format, args...)
	}
}

// decodePacket splits a pass-through packet into its control and payload terms.
func decodePacket(packet []byte) (control etf.Tuple, payload etf.Term, err error) {
	if len(packet) < 2 || packet[0] != passThrough || packet[1] != versionMagic {
		return nil, nil, fmt.Errorf("not a pass-through packet (starts with %v)", packet[:min(2, len(packet))])
	}
	// CheckTerm first: ergo allocates what a header claims before reading,
	// and a few bytes claiming 2^32 elements would kill the process.
	if _, err := CheckTerm(packet[2:]); err != nil {
		return nil, nil, fmt.Errorf("decoding control message: %w", err)
	}
	term, rest, err := etf.Decode(packet[2:], nil, etf.DecodeOptions{FlagBigPidRef: true})
	if err != nil {
		return nil, nil, fmt.Errorf("decoding control message: %w", err)
	}
	control, ok := term.(etf.Tuple)
	if !ok || len(control) == 0 {
		return nil, nil, fmt.Errorf("control message is %T, not a tuple", term)
	}
	if len(rest) > 0 {
		if rest[0] != versionMagic {
			return nil, nil, errors.New("payload without version magic")
		}
		if _, err := CheckTerm(rest[1:]); err != nil {
			return nil, nil, fmt.Errorf("decoding payload: %w", err)
		}
		if payload, _, err = etf.Decode(rest[1:], nil, etf.DecodeOptions{FlagBigPidRef: true}); err != nil {
			return nil, nil, fmt.Errorf("decoding payload: %w", err)
		}
	}
	return control, payload, nil
}

// handle acts on one control message. The exporter holds no links and runs
// nothing on request: it takes messages and monitors addressed to its own
// processes, acknowledges unlinks, and ignores the rest.
func (c *connection) handle(router node.CoreRouter, control etf.Tuple, payload etf.Term) error {
	op, ok := control[0].(int)
	if !ok {
		return nil
	}
	pid := func(i int) (etf.Pid, bool) {
		if i >= len(control) {
			return etf.Pid{}, false
		}
		p, ok := control[i].(etf.Pid)
		return p, ok
	}
	ref := func(i int) (etf.Ref, bool) {
		if i >= len(control) {
			return etf.Ref{}, false
		}
		r, ok := control[i].(etf.Ref)
		return r, ok
	}
	switch op {
	case opSend:
		if to, ok := pid(2); ok {
			router.RouteSend(etf.Pid{}, to, payload)
		}
	case opSendSender:
		from, _ := pid(1)
		if to, ok := pid(2); ok {
			router.RouteSend(from, to, payload)
		}
	case opMonitorP:
		// The probe's session process watches our caller, to end when we do.
		from, ok1 := pid(1)
		to, ok2 := pid(2)
		r, ok3 := ref(3)
		if ok1 && ok2 && ok3 {
			router.RouteMonitor(from, to, r)
		}
	case opDemonitorP:
		from, ok1 := pid(1)
		r, ok2 := ref(3)
		if ok1 && ok2 {
			router.RouteDemonitor(from, r)
		}
	case opUnlinkID:
		// {35, Id, From, To}: OTP 26+ expects an acknowledgement even though
		// we never link to anything.
		if len(control) == 4 {
			return c.sendControl(etf.Tuple{opUnlinkIDAck, control[1], control[3], control[2]}, nil)
		}
	case opRegSend, opLink, opUnlink, opUnlinkIDAck, opExit, opExit2, opPayloadExit, opPayloadExit2,
		opMonitorPExit, opPayloadMonitorPExit:
		// Nothing is registered here, nothing is linked, and no remote node
		// may stop the exporter's processes.
	default:
		c.logf("ignoring distribution operation %d from %s", op, c.peer)
	}
	return nil
}

func (c *connection) sendControl(control etf.Tuple, payload etf.Term) error {
	buf := lib.TakeBuffer()
	defer lib.ReleaseBuffer(buf)
	buf.Allocate(4)
	buf.AppendByte(passThrough)
	buf.AppendByte(versionMagic)
	opts := etf.EncodeOptions{
		FlagBigCreation: true,
		FlagBigPidRef:   c.peerFlags&flagV4NC != 0,
		NodeName:        c.nodename,
		PeerName:        c.peer,
	}
	if err := etf.Encode(control, buf, opts); err != nil {
		return fmt.Errorf("encoding control message: %w", err)
	}
	if payload != nil {
		buf.AppendByte(versionMagic)
		if err := etf.Encode(payload, buf, opts); err != nil {
			return fmt.Errorf("encoding message: %w", err)
		}
	}
	binary.BigEndian.PutUint32(buf.B[:4], uint32(buf.Len()-4))
	if err := c.write(buf.B); err != nil {
		return err
	}
	c.stats.msgsOut.Add(1)
	return nil
}

func (c *connection) Send(from gen.Process, to etf.Pid, message etf.Term) error {
	return c.sendControl(etf.Tuple{opSendSender, from.Self(), to}, message)
}

func (c *connection) SendReg(from gen.Process, to gen.ProcessID, message etf.Term) error {
	return c.sendControl(etf.Tuple{opRegSend, from.Self(), etf.Atom(""), etf.Atom(to.Name)}, message)
}

func (c *connection) Monitor(local etf.Pid, remote etf.Pid, ref etf.Ref) error {
	return c.sendControl(etf.Tuple{opMonitorP, local, remote, ref}, nil)
}

func (c *connection) Demonitor(local etf.Pid, remote etf.Pid, ref etf.Ref) error {
	return c.sendControl(etf.Tuple{opDemonitorP, local, remote, ref}, nil)
}

func (c *connection) MonitorReg(local etf.Pid, remote gen.ProcessID, ref etf.Ref) error {
	return c.sendControl(etf.Tuple{opMonitorP, local, etf.Atom(remote.Name), ref}, nil)
}

func (c *connection) DemonitorReg(local etf.Pid, remote gen.ProcessID, ref etf.Ref) error {
	return c.sendControl(etf.Tuple{opDemonitorP, local, etf.Atom(remote.Name), ref}, nil)
}

// MonitorExit tells a remote monitor that our process ended.
func (c *connection) MonitorExit(to etf.Pid, terminated etf.Pid, reason string, ref etf.Ref) error {
	return c.sendControl(etf.Tuple{opMonitorPExit, terminated, to, ref, etf.Atom(reason)}, nil)
}

func (c *connection) MonitorExitReg(to etf.Pid, terminated gen.ProcessID, reason string, ref etf.Ref) error {
	return c.sendControl(etf.Tuple{opMonitorPExit, etf.Atom(terminated.Name), to, ref, etf.Atom(reason)}, nil)
}

// The exporter never links, spawns remotely, uses aliases or proxies.
func (c *connection) SendAlias(gen.Process, etf.Alias, etf.Term) error { return errUnsupported }
func (c *connection) Link(etf.Pid, etf.Pid) error                      { return errUnsupported }
func (c *connection) Unlink(etf.Pid, etf.Pid) error                    { return errUnsupported }
func (c *connection) LinkExit(etf.Pid, etf.Pid, string) error          { return nil }
func (c *connection) SpawnRequest(string, string, gen.RemoteSpawnRequest, ...etf.Term) error {
	return errUnsupported
}
func (c *connection) SpawnReply(etf.Pid, etf.Ref, etf.Pid) error         { return errUnsupported }
func (c *connection) SpawnReplyError(etf.Pid, etf.Ref, error) error      { return errUnsupported }
func (c *connection) ProxyConnectRequest(node.ProxyConnectRequest) error { return errUnsupported }
func (c *connection) ProxyConnectReply(node.ProxyConnectReply) error     { return errUnsupported }
func (c *connection) ProxyConnectCancel(node.ProxyConnectCancel) error   { return errUnsupported }
func (c *connection) ProxyDisconnect(node.ProxyDisconnect) error         { return errUnsupported }
func (c *connection) ProxyRegisterSession(node.ProxySession) error       { return errUnsupported }
func (c *connection) ProxyUnregisterSession(string) error                { return errUnsupported }
func (c *connection) ProxyPacket(*lib.Buffer) error                      { return errUnsupported }

// Creation is the peer's incarnation; ergo's core checks pids against it.
func (c *connection) Creation() uint32 { return c.creation }

func (c *connection) Stats() node.NetworkStats {
	return node.NetworkStats{
		NodeName:    c.peer,
		BytesIn:     c.stats.bytesIn.Load(),
		BytesOut:    c.stats.bytesOut.Load(),
		MessagesIn:  c.stats.msgsIn.Load(),
		MessagesOut: c.stats.msgsOut.Load(),
	}
}
