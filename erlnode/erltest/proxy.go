// A TCP proxy that tests put between the exporter and a node to break the network.

package erltest

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections from its own loopback port to an upstream
// address, and lets a test add latency, cut every connection, stall them
// (a half-open connection: both sockets stay open, nothing gets through), or
// refuse new connections altogether.
type Proxy struct {
	upstream string
	addr     string

	mu       sync.Mutex
	listener net.Listener // nil while refusing
	latency  time.Duration
	stalled  bool
	resume   chan struct{} // closed when a stall ends
	conns    map[net.Conn]struct{}
	accepted int
}

// NewProxy starts a proxy to upstream; t.Cleanup stops it.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p := &Proxy{upstream: upstream, conns: map[net.Conn]struct{}{}, resume: make(chan struct{})}
	close(p.resume)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("erltest: proxy: %v", err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(func() {
		p.Refuse()
		p.Cut()
		p.Resume()
	})
	return p
}

// Addr is where to connect instead of upstream.
func (p *Proxy) Addr() string { return p.addr }

// Port is Addr's port.
func (p *Proxy) Port() int {
	_, port, _ := net.SplitHostPort(p.addr)
	n, _ := strconv.Atoi(port)
	return n
}

// Accepted counts the connections accepted so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// SetLatency delays every chunk of data, both ways, by d.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// Cut closes every open connection, both sides, as a reset link would.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Stall stops forwarding without closing anything: each side sees a peer
// that is connected and silent. New connections are accepted and stall too.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		p.stalled = true
		p.resume = make(chan struct{})
	}
}

// Resume ends a stall; data held back is then delivered.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		p.stalled = false
		close(p.resume)
	}
}

// Refuse closes the listening socket: new connections are refused, as by a
// host whose service is down. Open connections are left alone.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listener != nil {
		p.listener.Close()
		p.listener = nil
	}
}

// Listen listens again, on the same port, after Refuse.
func (p *Proxy) Listen(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	up := p.listener != nil
	p.mu.Unlock()
	if up {
		return
	}
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("erltest: proxy: listening again on %s: %v", p.addr, err)
	}
	p.serve(l)
}

func (p *Proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.listener = l
	p.mu.Unlock()
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return // closed by Refuse
			}
			go p.forward(down)
		}
	}()
}

func (p *Proxy) forward(down net.Conn) {
	up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		down.Close()
		return
	}
	p.mu.Lock()
	p.accepted++
	p.conns[down], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(up, down) }()
	go func() { defer wg.Done(); p.pipe(down, up) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, down)
	delete(p.conns, up)
	p.mu.Unlock()
}

// pipe copies src to dst until either fails, then closes both.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			latency, resume := p.latency, p.resume
			p.mu.Unlock()
			<-resume
			time.Sleep(latency)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a cut: either way this connection is over
		}
	}
}
