// Loading the probe module and holding the probe session on the target.

package erlnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/go-kit/log/level"
)

// SessionOptions say what the probe session keeps switched on while the
// exporter is connected, beside scheduler wall time, which it always keeps on.
type SessionOptions struct {
	// MicrostateAccounting costs the node some throughput, so it is kept
	// on only when asked for.
	MicrostateAccounting bool
	// SystemMonitor, when set, has the session install the node's system
	// monitor with these thresholds, unless another process holds it.
	SystemMonitor *SystemMonitorThresholds
}

// SystemMonitorThresholds are what makes an event of erlang:system_monitor/2.
type SystemMonitorThresholds struct {
	LongGC, LongSchedule time.Duration // whole milliseconds, at least 1
	LargeHeapBytes       uint64        // the node turns it into words
	LongMessageQueue     int           // messages; the event ends below half of it
	Names                int           // {event, name} counters kept, 1-1000
}

// term is the session's sysmon option, as the probe's session/3 takes it.
func (t SystemMonitorThresholds) term() etf.Map {
	return etf.Map{
		etf.Atom("long_gc"):            t.LongGC.Milliseconds(),
		etf.Atom("long_schedule"):      t.LongSchedule.Milliseconds(),
		etf.Atom("large_heap"):         int64(t.LargeHeapBytes),
		etf.Atom("long_message_queue"): t.LongMessageQueue,
		etf.Atom("names"):              t.Names,
	}
}

// ErrProbeDisabled is returned when a collector needs the probe module and
// --no-erlang.load-probe forbids loading code on the target.
var ErrProbeDisabled = errors.New("the probe module is needed but loading code on the node is disabled (--no-erlang.load-probe)")

// ensureProbeLocked loads the probe module on the target once per
// connection, unless the node already runs this exact version of it (a
// previous connection, or another exporter, loaded it). Loading a module a
// second time would push the running session process onto old code, and a
// third load would kill it, so an identical module is never reloaded. The
// caller holds lc.probeOnce.
func (c *Client) ensureProbeLocked(ctx context.Context, lc *liveConn) error {
	if lc.probeLoaded {
		return nil
	}
	loaded, err := c.Call(ctx, "erlang", "module_loaded", etf.Atom(ProbeModule))
	if err != nil {
		return fmt.Errorf("checking for the probe module: %w", err)
	}
	if IsTrue(loaded) {
		same, err := c.sameProbe(ctx)
		if err != nil {
			return err
		}
		if same {
			lc.probeLoaded = true
			return nil
		}
	}
	reply, err := c.Call(ctx, "code", "load_binary", etf.Atom(ProbeModule), ProbeModule+".beam", probeBeam)
	if err != nil {
		return fmt.Errorf("loading the probe module: %w", err)
	}
	if t, ok := reply.(etf.Tuple); !ok || len(t) != 2 || t[0] != etf.Atom("module") {
		return fmt.Errorf("loading the probe module: the node answered %s", describe(reply))
	}
	lc.probeLoaded = true
	return nil
}

// sameProbe compares the loaded module's MD5 with that of our binary, both
// computed by the node, so that the comparison uses its own notion of MD5.
func (c *Client) sameProbe(ctx context.Context) (bool, error) {
	loaded, err := c.Call(ctx, ProbeModule, "module_info", etf.Atom("md5"))
	if err != nil {
		return false, fmt.Errorf("reading the loaded probe's version: %w", err)
	}
	ours, err := c.Call(ctx, "beam_lib", "md5", probeBeam)
	if err != nil {
		return false, fmt.Errorf("reading our probe's version: %w", err)
	}
	// beam_lib:md5/1 answers {ok, {Module, MD5}}.
	t, err := Tuple(ours, 2)
	if err != nil {
		return false, fmt.Errorf("reading our probe's version: %w", err)
	}
	inner, err := Tuple(t[1], 2)
	if err != nil {
		return false, fmt.Errorf("reading our probe's version: %w", err)
	}
	a, _ := loaded.([]byte)
	b, _ := inner[1].([]byte)
	return a != nil && bytes.Equal(a, b), nil
}

// EnsureSession makes sure the probe's session process runs for this
// connection. The session keeps scheduler wall time (and what Config.Session
// asks for) switched on while we are connected, and switches them back when
// we go away, however we go. Each call checks that the session it started is
// still alive (one erlang:is_process_alive/1): a session killed on the node,
// or purged with the probe, is noticed on the next refresh that needs it,
// logged once, counted (SessionsLost) and replaced, without dropping the
// connection.
func (c *Client) EnsureSession(ctx context.Context) error {
	if !c.cfg.LoadProbe {
		return ErrProbeDisabled
	}
	lc := c.current()
	if lc == nil {
		return ErrNotConnected
	}
	lc.probeOnce.Lock()
	defer lc.probeOnce.Unlock()
	if lc.hasSession {
		alive, err := c.Call(ctx, "erlang", "is_process_alive", lc.session)
		if err != nil {
			return fmt.Errorf("checking the probe session: %w", err)
		}
		if IsTrue(alive) {
			return nil
		}
		lc.hasSession = false
		c.sessionsLost.Add(1)
		level.Warn(c.logger).Log("msg", "the probe session on the node has ended (killed, or purged with the probe module); starting a new one")
	}
	if err := c.ensureProbeLocked(ctx, lc); err != nil {
		return err
	}
	deadline, err := c.nodeDeadline(ctx, lc)
	if err != nil {
		return err
	}
	opts := etf.Map{etf.Atom("msacc"): c.cfg.Session.MicrostateAccounting}
	if sm := c.cfg.Session.SystemMonitor; sm != nil {
		opts[etf.Atom("sysmon")] = sm.term()
	}
	reply, err := c.Call(ctx, ProbeModule, "session", c.local.self.Self(), opts, deadline)
	if err != nil {
		return fmt.Errorf("starting the probe session: %w", err)
	}
	if err := probeDeadline(reply); err != nil {
		return fmt.Errorf("starting the probe session: %w", err)
	}
	t, err := Tuple(reply, 2)
	if err != nil || t[0] != etf.Atom("ok") {
		// {error, session_died}: it was killed before it was ready.
		return fmt.Errorf("starting the probe session: the node answered %s", describe(reply))
	}
	pid, ok := t[1].(etf.Pid)
	if !ok {
		return fmt.Errorf("starting the probe session: expected a pid, got %s", describe(t[1]))
	}
	lc.session, lc.hasSession = pid, true
	return nil
}

// SessionsLost counts the probe sessions found ended on the node while the
// connection stayed up, each replaced by a new one.
func (c *Client) SessionsLost() uint64 { return c.sessionsLost.Load() }

// ErrProbeDeadline is the probe's {error, deadline}: it stopped at the
// deadline it was given, which is the caller's, so it is a timeout.
var ErrProbeDeadline = fmt.Errorf("the probe stopped at the deadline: %w", context.DeadlineExceeded)

func probeDeadline(reply etf.Term) error {
	if t, ok := reply.(etf.Tuple); ok && len(t) == 2 && t[0] == etf.Atom("error") && t[1] == etf.Atom("deadline") {
		return ErrProbeDeadline
	}
	return nil
}

// ProbeCall runs a probe function, loading the probe first if needed. The
// context's deadline (DefaultCallTimeout if it has none) is passed as the
// probe's last argument, in the node's own clock, so that the call stops on
// the node when we stop waiting for it.
func (c *Client) ProbeCall(ctx context.Context, function string, args ...etf.Term) (etf.Term, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	if !c.cfg.LoadProbe {
		return nil, ErrProbeDisabled
	}
	lc := c.current()
	if lc == nil {
		return nil, ErrNotConnected
	}
	lc.probeOnce.Lock()
	err := c.ensureProbeLocked(ctx, lc)
	var deadline int64
	if err == nil {
		deadline, err = c.nodeDeadline(ctx, lc)
	}
	lc.probeOnce.Unlock()
	if err != nil {
		return nil, err
	}
	reply, err := c.Call(ctx, ProbeModule, function, append(args, deadline)...)
	if err != nil {
		return nil, err
	}
	if err := probeDeadline(reply); err != nil {
		return nil, fmt.Errorf("calling %s:%s: %w", ProbeModule, function, err)
	}
	return reply, nil
}

// clockResync bounds how long one reading of the node's clock is used: two
// clocks apart by 100 ppm drift 6 ms a minute.
const clockResync = time.Minute

// nodeClock maps our clock onto the node's erlang:monotonic_time
// (millisecond): node was read by the node at some moment before local, our
// time when its answer arrived, so a deadline mapped through it falls on
// the node at most one round trip before ours, and after it only by what
// the two clocks drift apart until the next reading.
type nodeClock struct {
	node  int64
	local time.Time
}

// nodeDeadline is ctx's deadline in the node's clock, which it reads first
// if it has not for clockResync. The caller holds lc.probeOnce.
func (c *Client) nodeDeadline(ctx context.Context, lc *liveConn) (int64, error) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(DefaultCallTimeout)
	}
	if lc.clock.local.IsZero() || time.Since(lc.clock.local) > clockResync {
		reply, err := c.Call(ctx, "erlang", "monotonic_time", etf.Atom("millisecond"))
		if err != nil {
			return 0, fmt.Errorf("reading the node's clock: %w", err)
		}
		local := time.Now()
		ms, err := Int64(reply)
		if err != nil {
			return 0, fmt.Errorf("reading the node's clock: %w", err)
		}
		lc.clock = nodeClock{node: ms, local: local}
	}
	return lc.clock.node + d.Sub(lc.clock.local).Milliseconds(), nil
}
