// The process's own distribution node, shared by every Client.

package erlnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"
)

// localNode is one ergo node and the one process on it, whose pid every call
// gives as its sender. A process runs one per local node name, whatever
// the number of targets: each target gets its own route (cookie, TLS,
// handshake and proto) through the resolver. One node per name also keeps
// the process clear of ergo's package-level state, which every node start
// rewrites, and keeps the targets' atom tables from seeing more names.
//
// A local node lives as long as the process: stopping and starting ergo
// nodes while others run is what that package-level state cannot take.
// ergo keeps the core pid of the node started last in a package variable,
// which a connection's goroutine reads when the connection goes down, so
// a node start while another node has connections is a data race. Hence
// the two default names, for short-name and for long-name targets, start
// together, before any connection, when either is first needed (a fleet
// may hold both kinds); a name set by the operator is one name for every
// target.
type localNode struct {
	name      string
	node      node.Node
	self      gen.Process
	refs      *refs
	resolver  *resolver
	handshake *hiddenHandshake // ergo initialises it with our name and creation

	mu      sync.Mutex
	clients map[string]*Client // by target
}

var locals = struct {
	sync.Mutex
	byName map[string]*localNode
}{byName: map[string]*localNode{}}

// attachLocal returns the local node called name, started on first use, with
// c registered as the only client of c's target.
func attachLocal(name string, c *Client) (*localNode, error) {
	locals.Lock()
	defer locals.Unlock()
	l, ok := locals.byName[name]
	if !ok {
		names := []string{name}
		if short, long := defaultLocalNames(); name == short || name == long {
			names = []string{short, long}
		}
		for _, n := range names {
			if _, started := locals.byName[n]; started {
				continue
			}
			started, err := startLocal(n)
			if err != nil {
				return nil, err
			}
			locals.byName[n] = started
		}
		l = locals.byName[name]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, taken := l.clients[c.cfg.Target]; taken {
		// Both would share one ergo connection, and its route.
		return nil, fmt.Errorf("%s is already monitored by this process", c.cfg.Target)
	}
	l.clients[c.cfg.Target] = c
	return l, nil
}

// detach forgets c; its target may then be monitored again.
func (l *localNode) detach(c *Client) {
	l.resolver.routes.Delete(c.cfg.Target)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients[c.cfg.Target] == c {
		delete(l.clients, c.cfg.Target)
	}
}

func startLocal(name string) (*localNode, error) {
	l := &localNode{
		name:      name,
		refs:      newRefs(),
		resolver:  &resolver{},
		handshake: &hiddenHandshake{},
		clients:   map[string]*Client{},
	}
	opts := node.Options{
		Handshake: l.handshake,
		// Every route brings its own proto; this one serves none.
		Proto:     &distProto{},
		Registrar: l.resolver,
		// ergo insists on a listener. This one is bound to loopback, never
		// registered in EPMD, and the handshake refuses whatever reaches it.
		Listeners: []node.Listener{{Hostname: "127.0.0.1", ListenBegin: 15000, ListenEnd: 65000}},
		Flags:     node.Flags{Enable: true, EnableBigCreation: true},
		System:    node.System{DisableAnonMetrics: true},
	}
	// ergo wants a node-wide cookie; every route overrides it, so this one
	// is random and never matches anything.
	n, err := node.StartWithContext(context.Background(), name, randomCookie(), opts)
	if err != nil {
		return nil, fmt.Errorf("starting the local distribution node %s: %w", name, err)
	}
	// The mailbox stays empty: every route's proto keeps messages from the
	// nodes away from ergo's router.
	p, err := n.Spawn("", gen.ProcessOptions{MailboxSize: 16}, &caller{})
	if err != nil {
		n.Stop()
		return nil, fmt.Errorf("starting the caller process: %w", err)
	}
	l.node, l.self = n, p
	return l, nil
}

func randomCookie() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
