// A resolve-only EPMD client: it looks nodes up and never registers or serves.

package erlnode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/node"
)

// DefaultEPMDPort is where every Erlang host runs its port mapper.
const DefaultEPMDPort = 4369

// ErrUnknownNode means EPMD on the node's host answered but has no such name:
// the node is not running, or its name is misspelt.
var ErrUnknownNode = errors.New("EPMD does not know the node")

// epmdTimeout bounds one look-up; EPMD answers in microseconds when it is up.
const epmdTimeout = 3 * time.Second

// resolver implements ergo's node.Registrar. ergo's default registrar starts
// an EPMD server of its own when none answers, which would take port 4369 from
// the cluster's real EPMD, and registers the node; this one only resolves,
// and only the nodes a Client asked for, each with that Client's route.
type resolver struct {
	routes sync.Map // target name -> *route
}

// route is how to reach one target: where to ask for its port, and the
// cookie, TLS settings, handshake and proto that ergo is to use for it.
type route struct {
	epmdPort int
	// distPort, when set, is dialled directly and EPMD is never asked.
	distPort int
	options  node.RouteOptions
	// dialing is true while the Client makes a connection attempt. ergo
	// also dials on its own when something is sent to a node it has no
	// connection to (a call that raced a drop); refusing those look-ups
	// keeps every connection one that the Client asked for, counted, logged
	// and handed to the scrape that wanted it, rather than a second
	// connection racing the Client's own.
	dialing atomic.Bool
}

var _ node.Registrar = (*resolver)(nil)

// Register is a no-op: the exporter is unreachable by design.
func (r *resolver) Register(context.Context, string, node.RegisterOptions) error { return nil }

func (r *resolver) RegisterProxy(string, int, node.ProxyFlags) error {
	return errors.New("proxies are not supported")
}
func (r *resolver) UnregisterProxy(string) error { return nil }
func (r *resolver) ResolveProxy(string) (node.ProxyRoute, error) {
	return node.ProxyRoute{}, errors.New("proxies are not supported")
}
func (r *resolver) Config() (node.RegistrarConfig, error) { return node.RegistrarConfig{}, nil }
func (r *resolver) ConfigItem(string) (etf.Term, error) {
	return nil, errors.New("no registrar configuration")
}
func (r *resolver) SetConfigUpdateCallback(func(string, etf.Term) error) error { return nil }

// Resolve is ergo's look-up. A node that no Client monitors has no route, so
// nothing can make the exporter dial a node it was not configured for.
func (r *resolver) Resolve(peer string) (node.Route, error) {
	v, ok := r.routes.Load(peer)
	if !ok {
		return node.Route{}, fmt.Errorf("%s is not a monitored node", peer)
	}
	rt := v.(*route)
	if !rt.dialing.Load() {
		return node.Route{}, fmt.Errorf("%s: no connection attempt is under way", peer)
	}
	return rt.resolveContext(context.Background(), peer)
}

// resolveContext looks peer up within ctx and epmdTimeout, whichever ends first.
func (rt *route) resolveContext(ctx context.Context, peer string) (node.Route, error) {
	alive, host, err := SplitNodeName(peer)
	if err != nil {
		return node.Route{}, err
	}
	port := uint16(rt.distPort)
	if port == 0 {
		if port, err = lookupPort(ctx, host, rt.epmdPort, alive); err != nil {
			return node.Route{}, err
		}
	}
	return node.Route{Node: peer, Host: host, Port: port, Options: rt.options}, nil
}

// lookupPort asks EPMD on host for the distribution port of alive (PORT_PLEASE2_REQ).
func lookupPort(ctx context.Context, host string, epmdPort int, alive string) (uint16, error) {
	ctx, cancel := context.WithTimeout(ctx, epmdTimeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(epmdPort)))
	if err != nil {
		return 0, fmt.Errorf("asking EPMD on %s: %w", host, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)

	req := binary.BigEndian.AppendUint16(nil, uint16(1+len(alive)))
	req = append(req, 'z')
	req = append(req, alive...)
	if _, err := conn.Write(req); err != nil {
		return 0, fmt.Errorf("asking EPMD on %s: %w", host, err)
	}
	// EPMD answers and closes; the reply is small.
	resp, err := io.ReadAll(io.LimitReader(conn, 1024))
	if err != nil {
		return 0, fmt.Errorf("reading EPMD's answer from %s: %w", host, err)
	}
	return parsePortReply(resp)
}

// parsePortReply decodes PORT2_RESP: 'w', result, then on success the port.
func parsePortReply(resp []byte) (uint16, error) {
	if len(resp) < 2 || resp[0] != 'w' {
		return 0, fmt.Errorf("malformed EPMD answer (%d bytes)", len(resp))
	}
	if resp[1] != 0 {
		return 0, ErrUnknownNode
	}
	if len(resp) < 4 {
		return 0, fmt.Errorf("truncated EPMD answer (%d bytes)", len(resp))
	}
	return binary.BigEndian.Uint16(resp[2:4]), nil
}

// EPMDNames asks EPMD on host for the names of the nodes registered there
// (NAMES_REQ), as short names without @host.
func EPMDNames(ctx context.Context, host string, epmdPort int) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, epmdTimeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(epmdPort)))
	if err != nil {
		return nil, fmt.Errorf("asking EPMD on %s: %w", host, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte{0, 1, 'n'}); err != nil {
		return nil, fmt.Errorf("asking EPMD on %s: %w", host, err)
	}
	// EPMD answers with its port and one line per node, then closes.
	resp, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading EPMD's names from %s: %w", host, err)
	}
	return parseNamesReply(resp)
}

// parseNamesReply decodes NAMES_RESP: EPMD's port (4 bytes), then lines of
// "name <alive> at port <port>".
func parseNamesReply(resp []byte) ([]string, error) {
	if len(resp) < 4 {
		return nil, fmt.Errorf("truncated EPMD names answer (%d bytes)", len(resp))
	}
	var names []string
	for _, line := range strings.Split(string(resp[4:]), "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "name" && f[2] == "at" && f[3] == "port" {
			names = append(names, f[1])
		}
	}
	return names, nil
}
