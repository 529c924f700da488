// The long-lived connection to one target node: connect, back off, reconnect.

package erlnode

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/node"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Connection error reasons: a small fixed set, fit for a metric label.
const (
	ReasonUnknownNode = "unknown_node" // EPMD answered and does not know the name
	ReasonUnreachable = "unreachable"  // no answer from EPMD or the node's port
	ReasonAuth        = "auth"         // the node rejected the cookie
	ReasonRefused     = "refused"      // the node refused us before the challenge
	ReasonTimeout     = "timeout"      // the node accepted TCP and then said nothing
	ReasonTLS         = "tls"          // the TLS handshake failed (certificates, versions)
	ReasonWrongNode   = "wrong_node"   // another node answered; it got nothing derived from the cookie
	ReasonProtocol    = "protocol"     // anything else in the handshake, missing capabilities included
)

// reasons lists every connection error reason, so that counters can start at 0.
var reasons = []string{ReasonUnknownNode, ReasonUnreachable, ReasonAuth, ReasonRefused, ReasonTimeout, ReasonTLS, ReasonWrongNode, ReasonProtocol}

// Backoff between connection attempts after the node itself turned us away
// (see backsOff). A wrong cookie makes the target log one rejection per
// attempt, so those attempts must thin out.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// backsOff reports whether a failure of this kind holds further attempts
// back until the backoff has passed. Only failures the node answered do: it
// rejected the cookie, refused us, failed the TLS handshake or spoke out of
// turn, and each new attempt would cost it a log line for the same answer.
// A node that was absent (unknown to EPMD, its port closed) or silent is
// retried by the next caller, so that a scrape arriving after the node is
// back finds it.
func backsOff(reason string) bool {
	switch reason {
	case ReasonAuth, ReasonRefused, ReasonTLS, ReasonProtocol:
		return true
	}
	return false
}

// Config says which node to reach and how.
type Config struct {
	Target      string // name@host of the node to monitor
	LocalName   string // our own stable node name
	Cookie      string
	EPMDPort    int           // 0 means 4369
	DistPort    int           // when set, dial this port and skip EPMD
	NetTickTime time.Duration // the target's net_ticktime; 0 means 60 s
	LoadProbe   bool          // may the probe module be loaded on the target
	// Session is what the probe session keeps switched on.
	Session SessionOptions
	// TLS, when set, makes the connection TLS distribution (inet_tls_dist).
	TLS    *tls.Config
	Logger log.Logger
}

// Client keeps the connection to one target, through the process's shared
// local node.
type Client struct {
	cfg       Config
	logger    log.Logger
	local     *localNode
	route     *route
	handshake *hiddenHandshake
	proto     *distProto

	conn       atomic.Pointer[liveConn]
	connectMu  sync.Mutex    // one connection attempt at a time
	dropped    chan struct{} // wakes Run when a connection ends
	generation atomic.Uint64

	// Guarded by connectMu.
	attempt     chan error  // the ergo connect still running, if any
	attemptTo   node.Route  // where that attempt dials
	previous    *connection // the latest connection established
	lastAttempt time.Time   // when the latest attempt started
	lastReason  string      // why it failed; "" when it succeeded
	lastErr     error
	backoff     time.Duration
	nextAttempt time.Time

	errorCounts  sync.Map // reason -> *atomic.Uint64
	sessionsLost atomic.Uint64
}

// liveConn is one established connection; down closes when it ends.
type liveConn struct {
	dist       *connection
	generation uint64
	down       chan struct{}

	probeOnce   sync.Mutex
	probeLoaded bool
	session     etf.Pid
	hasSession  bool
	clock       nodeClock // for the probe's deadlines
}

func init() {
	// ergo prints its own warnings through the standard logger; everything
	// that matters reaches our logger with context instead.
	flag.CommandLine.Set("ergo.warning", "false")
}

// ValidateNetTickTime checks a target's net_ticktime, which Erlang keeps
// in whole seconds: 0 (for the default, 60 s), or 1 s or more. The
// connection sends a tick every quarter of it and gives up after a silent
// one, so a smaller value would drop every connection, or tick in a loop.
func ValidateNetTickTime(d time.Duration) error {
	if d == 0 || d >= time.Second && d%time.Second == 0 {
		return nil
	}
	return fmt.Errorf("net tick time %s: a node's net_ticktime is a whole number of seconds, at least 1s", d)
}

// New registers the target with the local node, which it starts on first
// use. It does not connect: Run and EnsureConnected do that. One process may
// monitor a target through one Client at a time.
func New(cfg Config) (*Client, error) {
	if _, _, err := SplitNodeName(cfg.Target); err != nil {
		return nil, err
	}
	if cfg.LocalName == "" {
		cfg.LocalName = defaultLocalName(cfg.Target)
	}
	if _, _, err := SplitNodeName(cfg.LocalName); err != nil {
		return nil, fmt.Errorf("local name: %w", err)
	}
	if err := ValidateNetTickTime(cfg.NetTickTime); err != nil {
		return nil, err
	}
	if cfg.EPMDPort == 0 {
		cfg.EPMDPort = DefaultEPMDPort
	}
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	if cfg.Cookie == "" {
		// ergo would fall back to the local node's cookie.
		return nil, errors.New("no cookie")
	}
	c := &Client{
		cfg:     cfg,
		logger:  log.With(cfg.Logger, "node", cfg.Target),
		dropped: make(chan struct{}, 1),
		backoff: minBackoff,
	}
	c.proto = &distProto{
		netTickTime: cfg.NetTickTime,
		closed:      c.dropConnection,
		logf: func(format string, args ...any) {
			level.Warn(c.logger).Log("msg", fmt.Sprintf(format, args...))
		},
	}
	local, err := attachLocal(cfg.LocalName, c)
	if err != nil {
		return nil, err
	}
	c.local = local
	c.proto.self = local.self.Self()
	// A handshake of its own keeps this target's last error apart.
	c.handshake = &hiddenHandshake{name: local.handshake.name, creation: local.handshake.creation, peer: cfg.Target}
	c.route = &route{
		epmdPort: cfg.EPMDPort,
		distPort: cfg.DistPort,
		options: node.RouteOptions{
			Cookie:    cfg.Cookie,
			Handshake: c.handshake,
			Proto:     c.proto,
			TLS:       cfg.TLS,
			// In ergo v1.999.224 IsErgo only decides whose TLS settings the
			// dialer uses: the route's, rather than the local node's.
			IsErgo: cfg.TLS != nil,
		},
	}
	local.resolver.routes.Store(cfg.Target, c.route)
	return c, nil
}

// Target is the monitored node's name.
func (c *Client) Target() string { return c.cfg.Target }

// LocalName is the exporter's own node name, as the target sees it.
func (c *Client) LocalName() string { return c.cfg.LocalName }

// Self is the pid every call to the node comes from. A probe function given
// it can monitor it, to learn that the exporter has gone: the monitor fires
// when the connection drops.
func (c *Client) Self() etf.Pid { return c.local.self.Self() }

// Up reports whether a connection is established.
func (c *Client) Up() bool { return c.current() != nil }

// Generation numbers connections: it changes whenever the connection is
// re-established, so caches can tell values of an old connection.
func (c *Client) Generation() uint64 {
	if lc := c.current(); lc != nil {
		return lc.generation
	}
	return 0
}

// current returns the live connection, or nil. The connection's own state
// decides, so a drop is seen at once, whoever asks.
func (c *Client) current() *liveConn {
	lc := c.conn.Load()
	if lc != nil && !lc.dist.alive() {
		c.dropConnection(lc.dist, context.Cause(lc.dist.ctx))
		return nil
	}
	return lc
}

// ConnectionErrors returns how many connection attempts failed, by reason.
func (c *Client) ConnectionErrors() map[string]uint64 {
	out := make(map[string]uint64, len(reasons))
	for _, r := range reasons {
		out[r] = 0
	}
	c.errorCounts.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// Run keeps the connection up until ctx ends: it reconnects with backoff
// after every failure or drop.
func (c *Client) Run(ctx context.Context) {
	for {
		c.EnsureConnected(ctx)
		wait := time.Hour // until woken by a drop
		if !c.Up() {
			c.connectMu.Lock()
			wait = max(time.Until(c.nextAttempt), 10*time.Millisecond)
			c.connectMu.Unlock()
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-c.dropped:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// dropConnection forgets a connection that ended: pending calls fail at
// once, and the next attempt is due immediately.
func (c *Client) dropConnection(dist *connection, err error) {
	if !c.forget(dist) {
		return
	}
	level.Warn(c.logger).Log("msg", "lost the connection to the node", "err", err)
	// No lock here: current() may call this while EnsureConnected holds
	// connectMu. The attempt after a drop is due at once anyway, because a
	// successful connect left nextAttempt in the past.
	select {
	case c.dropped <- struct{}{}:
	default:
	}
}

// forget makes dist no longer the live connection, failing its pending
// calls; false means it already was not.
func (c *Client) forget(dist *connection) bool {
	lc := c.conn.Load()
	if lc == nil || lc.dist != dist || !c.conn.CompareAndSwap(lc, nil) {
		return false
	}
	close(lc.down)
	return true
}

// EnsureConnected connects if there is no connection and an attempt is due.
// Every caller that finds no connection gets an attempt that started after
// it arrived: a scrape that comes after the node is back connects. Callers
// that arrive together share one attempt, and an attempt still running for
// a caller that gave up is joined, not repeated, so a flood of scrapes makes
// one attempt at a time. The one exception: after the node turned us away
// (backsOff), no attempt is made until the backoff has passed.
func (c *Client) EnsureConnected(ctx context.Context) error {
	if c.Up() {
		return nil
	}
	arrived := time.Now()
	c.connectMu.Lock()
	defer c.connectMu.Unlock()
	if c.Up() {
		return nil
	}
	if c.lastErr != nil && !c.lastAttempt.Before(arrived) {
		// Another caller's attempt began after we arrived, and failed.
		return c.lastErr
	}
	now := time.Now()
	if backsOff(c.lastReason) && now.Before(c.nextAttempt) {
		return fmt.Errorf("%w (last attempt: %s; next in %s)", ErrNotConnected, c.lastReason, c.nextAttempt.Sub(now).Round(time.Second))
	}
	c.lastAttempt = now
	reason, err := c.connect(ctx)
	if err != nil {
		c.countError(reason)
		if reason != c.lastReason {
			level.Error(c.logger).Log("msg", "cannot connect to the node", "reason", reason, "err", err)
		}
		c.lastReason, c.lastErr = reason, err
		c.nextAttempt = now.Add(c.backoff)
		c.backoff = min(2*c.backoff, maxBackoff)
		return err
	}
	if c.lastReason != "" {
		level.Info(c.logger).Log("msg", "connected to the node again", "previous_failure", c.lastReason)
	} else {
		level.Info(c.logger).Log("msg", "connected to the node", "as", c.cfg.LocalName)
	}
	c.lastReason, c.lastErr = "", nil
	c.backoff = minBackoff
	return nil
}

func (c *Client) countError(reason string) {
	v, _ := c.errorCounts.LoadOrStore(reason, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

// connect makes one attempt and classifies its failure. ergo reports every
// failed connect as the same "no route", so we resolve first ourselves and
// read the handshake's own error afterwards.
func (c *Client) connect(ctx context.Context) (string, error) {
	if prev := c.previous; prev != nil {
		// ergo forgets a connection only after its reader has stopped;
		// connecting before that would hand back the dead connection.
		select {
		case <-prev.terminated:
		case <-ctx.Done():
			return ReasonTimeout, fmt.Errorf("waiting for the previous connection to close: %w", ctx.Err())
		}
	}
	if c.attempt == nil {
		resolved, err := c.route.resolveContext(ctx, c.cfg.Target)
		if err != nil {
			switch {
			case errors.Is(err, ErrUnknownNode):
				return ReasonUnknownNode, fmt.Errorf("%s: %w", c.cfg.Target, err)
			case ctx.Err() != nil:
				return ReasonTimeout, err
			}
			return ReasonUnreachable, err
		}
		c.handshake.lastErr.Store(nil)
		done := make(chan error, 1)
		c.attempt, c.attemptTo = done, resolved
		c.route.dialing.Store(true)
		go func() {
			err := c.local.node.Connect(c.cfg.Target)
			// Before done: the next attempt sets it again only after
			// taking this one's result.
			c.route.dialing.Store(false)
			done <- err
		}()
	}
	var err error
	select {
	case err = <-c.attempt:
		c.attempt = nil
	case <-ctx.Done():
		// ergo's dial and our handshake are bounded by their own timeouts.
		// The attempt goes on, and the next caller waits for it rather than
		// starting another: a frozen node cannot pile up goroutines.
		return ReasonTimeout, ctx.Err()
	}
	if err != nil {
		herr := c.handshake.lastErr.Load()
		switch {
		case herr != nil:
			return classify(*herr), *herr
		case c.cfg.TLS != nil && c.accepts(ctx, c.attemptTo):
			// ergo hides why its dial failed; if the port takes a plain
			// TCP connection, it was the TLS handshake.
			return ReasonTLS, fmt.Errorf("the TLS handshake with %s failed: check the --erlang.tls.* files against the node's ssl_dist_optfile (the node logs why)", c.cfg.Target)
		default:
			// Resolved, yet no handshake: the dial itself failed.
			return ReasonUnreachable, fmt.Errorf("dialling %s: %w", c.cfg.Target, err)
		}
	}
	dist := c.proto.latestTo(c.cfg.Target)
	if dist == nil || !dist.alive() {
		return ReasonProtocol, errors.New("the connection ended right after the handshake")
	}
	c.previous = dist
	c.conn.Store(&liveConn{dist: dist, generation: c.generation.Add(1), down: make(chan struct{})})
	return "", nil
}

// accepts reports whether the route's port takes a TCP connection.
func (c *Client) accepts(ctx context.Context, to node.Route) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(to.Host, strconv.Itoa(int(to.Port))))
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func classify(err error) string {
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports an alert from the peer this way.
		return ReasonTLS
	case errors.Is(err, ErrAuth):
		return ReasonAuth
	case errors.Is(err, ErrNotAllowed):
		return ReasonRefused
	case errors.Is(err, ErrWrongNode):
		return ReasonWrongNode
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.As(err, &netErr):
		return ReasonUnreachable
	default:
		return ReasonProtocol
	}
}

// Close ends the probe session, disconnects, and frees the target for
// another Client. The local node stays for the life of the process.
func (c *Client) Close() {
	if lc := c.current(); lc != nil {
		lc.probeOnce.Lock()
		if lc.hasSession {
			// The session would end on its own when the connection drops;
			// telling it first restores the node's flags without delay.
			lc.dist.sendTo(lc.session, etf.Atom("stop"))
		}
		lc.probeOnce.Unlock()
		time.Sleep(50 * time.Millisecond) // let the stop leave before the socket closes
		// Forgotten first, so that the reader ending on the closed socket
		// does not report a lost connection.
		c.forget(lc.dist)
		c.local.node.Disconnect(c.cfg.Target)
		level.Debug(c.logger).Log("msg", "disconnected from the node")
	}
	c.local.detach(c)
}
