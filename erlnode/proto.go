// The distribution protocol after the handshake: framing, ticks, the control
// messages a hidden, read-only client needs, and the replies to its calls.

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
	defaultNetTickTime     = 60 * time.Second
	tickIntervalsPerPeriod = 4
)

// Frame sizes. Every frame after the handshake starts with its length, which
// the peer chooses: the buffer for a frame starts at firstFrameBuffer and
// grows with the bytes that have arrived, so a peer that announces more than
// it sends costs us what it sent. MaxFrameSize is the hard cap: a longer
// frame ends the connection before any of it is read. The largest reply the
// exporter asks for, a probe ranking at its bound of 1,000 rows, is far
// smaller than the cap.
const (
	MaxFrameSize     = 64 << 20
	firstFrameBuffer = 4 << 10
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
	// self is the pid the exporter's calls come from; a message to any other
	// pid is not for us.
	self etf.Pid
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
	stats     struct{ bytesIn, bytesOut, msgsIn, msgsOut, dropped atomic.Uint64 }
	warnOnce  sync.Once
	strayOnce sync.Once

	// waiting holds the calls sent on this connection that wait for a reply,
	// by reference. The reader hands each reply to its call directly: a
	// reply is taken only from the connection its call went out on, and no
	// mailbox is shared with other targets, so a node that floods us slows
	// down nobody's replies but its own.
	waitMu  sync.Mutex
	waiting map[etf.Ref]chan etf.Term
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
		waiting:    map[etf.Ref]chan etf.Term{},
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

// Serve reads the connection until it ends. Nothing read is handed to ergo's
// router: the replies go straight to their calls (see expect), and the
// exporter's process has no mailbox anyone can fill.
func (p *distProto) Serve(ci node.ConnectionInterface, _ node.CoreRouter) {
	c := ci.(*connection)
	go c.ticker()
	err := c.readLoop()
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
func (c *connection) readLoop() error {
	in := countingReader{r: c.conn, n: &c.stats.bytesIn}
	var size [4]byte
	for {
		if c.ctx.Err() != nil {
			return context.Cause(c.ctx)
		}
		c.conn.SetReadDeadline(time.Now().Add(c.proto.tickTime()))
		if _, err := io.ReadFull(in, size[:]); err != nil {
			return fmt.Errorf("reading from %s: %w", c.peer, err)
		}
		n := binary.BigEndian.Uint32(size[:])
		if n == 0 {
			continue // a tick
		}
		if n > MaxFrameSize {
			return fmt.Errorf("%s announced a frame of %d bytes, over the %d byte limit", c.peer, n, MaxFrameSize)
		}
		packet, err := readFrame(in, int(n))
		if err != nil {
			return fmt.Errorf("reading from %s: %w", c.peer, err)
		}
		c.stats.msgsIn.Add(1)
		control, payload, err := decodePacket(packet)
		if err != nil {
			// One undecodable message is not worth the connection: the call
			// that waited for it times out and reports itself.
			c.warnOnce.Do(func() { c.logf("dropping a message from %s that cannot be decoded: %v", c.peer, err) })
			continue
		}
		if err := c.handle(control, payload); err != nil {
			return err
		}
	}
}

// readFrame reads a frame of n bytes into a buffer that grows as they
// arrive: at most twice what has arrived, or firstFrameBuffer.
func readFrame(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, firstFrameBuffer))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), len(buf)+min(n-len(buf), len(buf)))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// countingReader counts the bytes read as they arrive, so that the stats
// show a frame in progress too.
type countingReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (cr countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n.Add(uint64(n))
	return n, err
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
// nothing on request: it takes the replies to its calls, answers monitors,
// acknowledges unlinks, and ignores the rest.
func (c *connection) handle(control etf.Tuple, payload etf.Term) error {
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
	case opSend, opSendSender:
		// {2, Unused, To} and {22, From, To}: only a reply to one of our
		// calls is wanted; everything else is dropped here.
		to, ok := pid(2)
		if !ok || to != c.proto.self {
			c.stray()
			return nil
		}
		if from, ok := pid(1); op == opSendSender && (!ok || string(from.Node) != c.peer) {
			c.stray()
			return nil
		}
		c.deliver(payload)
	case opMonitorP:
		// {19, From, To, Ref}. The probe's session watches the pid our calls
		// come from, to end when we go. That pid lives as long as the
		// connection, so its monitor needs nothing from us: the node sees
		// the connection end. Any other pid, or a name, is not here.
		from, ok1 := pid(1)
		r, ok2 := ref(3)
		if to, ok := pid(2); ok1 && ok2 && (!ok || to != c.proto.self) && len(control) > 2 {
			return c.sendControl(etf.Tuple{opMonitorPExit, control[2], from, r, etf.Atom("noproc")}, nil)
		}
	case opDemonitorP:
		// Nothing was registered for a monitor, so nothing is to forget.
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

// expect registers a call by its reference before the call goes out on this
// connection; the reply, if one comes on this connection, arrives on the
// channel. The caller must forget the reference when it stops waiting.
func (c *connection) expect(ref etf.Ref) <-chan etf.Term {
	ch := make(chan etf.Term, 1)
	c.waitMu.Lock()
	c.waiting[ref] = ch
	c.waitMu.Unlock()
	return ch
}

func (c *connection) forgetCall(ref etf.Ref) {
	c.waitMu.Lock()
	delete(c.waiting, ref)
	c.waitMu.Unlock()
}

// deliver hands a reply, {Ref, Reply} as gen_server:reply/2 sends it, to the
// call waiting for it here. A reply nobody waits for (its call timed out) is
// dropped quietly; anything else, with a line in the log.
func (c *connection) deliver(payload etf.Term) {
	t, ok := payload.(etf.Tuple)
	if !ok || len(t) != 2 {
		c.stray()
		return
	}
	ref, ok := t[0].(etf.Ref)
	if !ok || string(ref.Node) != c.nodename {
		c.stray() // not a reference we made
		return
	}
	c.waitMu.Lock()
	ch, ok := c.waiting[ref]
	delete(c.waiting, ref)
	c.waitMu.Unlock()
	if !ok {
		c.stats.dropped.Add(1)
		return
	}
	ch <- t[1] // never blocks: one slot, one delivery per reference
}

// stray drops a message that is not a reply to us, and says so once per
// connection: a node that sends them is misbehaving or hostile.
func (c *connection) stray() {
	c.stats.dropped.Add(1)
	c.strayOnce.Do(func() { c.logf("dropping messages from %s that answer none of the exporter's calls", c.peer) })
}

// sendTo sends message to the process to on the peer, from our pid.
func (c *connection) sendTo(to etf.Pid, message etf.Term) error {
	return c.sendControl(etf.Tuple{opSendSender, c.proto.self, to}, message)
}

// sendReg sends message to the process registered as name on the peer.
func (c *connection) sendReg(name string, message etf.Term) error {
	return c.sendControl(etf.Tuple{opRegSend, c.proto.self, etf.Atom(""), etf.Atom(name)}, message)
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
