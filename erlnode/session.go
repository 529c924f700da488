// Loading the probe module and holding the probe session on the target.

package erlnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/ergo-services/ergo/etf"
)

// SessionOptions say what the probe session keeps switched on while the
// exporter is connected, beside scheduler wall time, which it always keeps on.
type SessionOptions struct {
	// MicrostateAccounting costs the node some throughput, so it is kept
	// on only when asked for.
	MicrostateAccounting bool
}

// ErrProbeDisabled is returned when a collector needs the probe module and
// --no-erlang.load-probe forbids loading code on the target.
var ErrProbeDisabled = errors.New("the probe module is needed but loading code on the node is disabled (--no-erlang.load-probe)")

// ensureProbe loads the probe module on the target once per connection,
// unless the node already runs this exact version of it (a previous
// connection, or another exporter, loaded it). Loading a module a second time
// would push the running session process onto old code, and a third load
// would kill it, so an identical module is never reloaded.
func (c *Client) ensureProbe(ctx context.Context) error {
	if !c.cfg.LoadProbe {
		return ErrProbeDisabled
	}
	lc := c.current()
	if lc == nil {
		return ErrNotConnected
	}
	lc.probeOnce.Lock()
	defer lc.probeOnce.Unlock()
	return c.ensureProbeLocked(ctx, lc)
}

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

// EnsureSession starts the probe's session process for this connection. The
// session keeps scheduler wall time (and what Config.Session asks for)
// switched on while we are connected, and switches them back when we go
// away, however we go.
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
		return nil
	}
	if err := c.ensureProbeLocked(ctx, lc); err != nil {
		return err
	}
	opts := etf.Map{etf.Atom("msacc"): c.cfg.Session.MicrostateAccounting}
	reply, err := c.Call(ctx, ProbeModule, "session", c.local.self.Self(), opts)
	if err != nil {
		return fmt.Errorf("starting the probe session: %w", err)
	}
	t, err := Tuple(reply, 2)
	if err != nil || t[0] != etf.Atom("ok") {
		return fmt.Errorf("starting the probe session: the node answered %s", describe(reply))
	}
	pid, ok := t[1].(etf.Pid)
	if !ok {
		return fmt.Errorf("starting the probe session: expected a pid, got %s", describe(t[1]))
	}
	lc.session, lc.hasSession = pid, true
	return nil
}

// ProbeCall runs a probe function, loading the probe first if needed.
func (c *Client) ProbeCall(ctx context.Context, function string, args ...etf.Term) (etf.Term, error) {
	if err := c.ensureProbe(ctx); err != nil {
		return nil, err
	}
	return c.Call(ctx, ProbeModule, function, args...)
}
