package erlnode

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// testConnection is a connection as the proto sets it up, to peer, with the
// far end of a pipe standing for the node.
func testConnection(t *testing.T, self etf.Pid, peer string) (*connection, net.Conn) {
	t.Helper()
	near, far := net.Pipe()
	t.Cleanup(func() { near.Close(); far.Close() })
	c := &connection{
		proto:    &distProto{self: self},
		conn:     near,
		nodename: string(self.Node),
		peer:     peer,
		waiting:  map[etf.Ref]chan etf.Term{},
	}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	t.Cleanup(func() { c.cancel(nil) })
	return c, far
}

// TestRepliesReachTheirCall: a reply is delivered only to a call waiting on
// the connection it came in on, only if it is addressed to our pid, and,
// when it names a sender, only if that sender is on the node.
func TestRepliesReachTheirCall(t *testing.T) {
	self := etf.Pid{Node: "beam_exporter@vm", ID: 1000, Creation: 7}
	theirs := etf.Pid{Node: "app@vm", ID: 80, Creation: 3}
	ref := newRefs().make(self)
	other := newRefs().make(self)
	for _, tc := range []struct {
		name      string
		control   etf.Tuple
		payload   etf.Term
		delivered bool
	}{
		{"a reply", etf.Tuple{opSendSender, theirs, self}, etf.Tuple{ref, etf.Atom("ok")}, true},
		{"a reply without sender", etf.Tuple{opSend, etf.Atom(""), self}, etf.Tuple{ref, etf.Atom("ok")}, true},
		{"another call's reference", etf.Tuple{opSendSender, theirs, self}, etf.Tuple{other, etf.Atom("ok")}, false},
		{"to another pid", etf.Tuple{opSendSender, theirs, etf.Pid{Node: self.Node, ID: 1001, Creation: 7}}, etf.Tuple{ref, etf.Atom("ok")}, false},
		{"to our pid of an earlier run", etf.Tuple{opSendSender, theirs, etf.Pid{Node: self.Node, ID: 1000, Creation: 6}}, etf.Tuple{ref, etf.Atom("ok")}, false},
		{"from a third node", etf.Tuple{opSendSender, etf.Pid{Node: "other@vm", ID: 80, Creation: 3}, self}, etf.Tuple{ref, etf.Atom("ok")}, false},
		{"not a reply", etf.Tuple{opSendSender, theirs, self}, etf.Atom("hello"), false},
		{"a three-tuple", etf.Tuple{opSendSender, theirs, self}, etf.Tuple{ref, etf.Atom("ok"), 1}, false},
		{"their reference", etf.Tuple{opSendSender, theirs, self}, etf.Tuple{etf.Ref{Node: "app@vm", ID: ref.ID}, etf.Atom("ok")}, false},
		{"no recipient", etf.Tuple{opSendSender, theirs}, etf.Tuple{ref, etf.Atom("ok")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := testConnection(t, self, "app@vm")
			ch := c.expect(ref)
			if err := c.handle(tc.control, tc.payload); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-ch:
				if !tc.delivered || got != etf.Atom("ok") {
					t.Errorf("delivered %v", got)
				}
			default:
				if tc.delivered {
					t.Error("not delivered")
				}
				if n := c.stats.dropped.Load(); n != 1 {
					t.Errorf("%d messages counted as dropped, want 1", n)
				}
			}
		})
	}
}

// TestMonitors: the node may monitor our pid, which lives as long as the
// connection and so needs no answer; any other pid, or a name, is answered
// with noproc at once, as a node would.
func TestMonitors(t *testing.T) {
	self := etf.Pid{Node: "beam_exporter@vm", ID: 1000, Creation: 7}
	theirs := etf.Pid{Node: "app@vm", ID: 80, Creation: 3}
	ref := etf.Ref{Node: "app@vm", Creation: 3, ID: [5]uint32{1, 2, 3}}
	c, far := testConnection(t, self, "app@vm")
	answers := make(chan etf.Tuple, 4)
	go func() {
		var size [4]byte
		for {
			if _, err := io.ReadFull(far, size[:]); err != nil {
				return
			}
			packet := make([]byte, binary.BigEndian.Uint32(size[:]))
			if _, err := io.ReadFull(far, packet); err != nil {
				return
			}
			control, _, err := decodePacket(packet)
			if err != nil {
				t.Errorf("decoding our answer: %v", err)
				return
			}
			answers <- control
		}
	}()
	for _, to := range []etf.Term{self, etf.Pid{Node: self.Node, ID: 1001, Creation: 7}, etf.Atom("rex")} {
		if err := c.handle(etf.Tuple{opMonitorP, theirs, to, ref}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []etf.Term{etf.Pid{Node: self.Node, ID: 1001, Creation: 7}, etf.Atom("rex")} {
		select {
		case got := <-answers:
			if len(got) != 5 || got[0] != opMonitorPExit || got[1] != want || got[2] != theirs || got[3] != ref || got[4] != etf.Atom("noproc") {
				t.Errorf("answer %v, want noproc for %v", got, want)
			}
		case <-time.After(peerTimeout):
			t.Fatal("no answer to a monitor of a pid that is not ours")
		}
	}
	select {
	case got := <-answers:
		t.Errorf("unexpected answer %v", got)
	default:
	}
}

// connectTo connects a Client to a real node.
func connectTo(t *testing.T, node *erltest.Node) *Client {
	t.Helper()
	client, err := New(Config{Target: node.Name, Cookie: node.Cookie})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	if err := client.EnsureConnected(connectCtx(t)); err != nil {
		t.Fatalf("connecting to %s: %v", node.Name, err)
	}
	return client
}

// TestReplyFromAnotherNodeIsIgnored: a node that learns of a call the
// exporter made to another node cannot answer it. The call on one node
// waits at a gate; the other node sends a reply with that call's reference
// to the exporter's pid; the call still gets its own node's answer.
func TestReplyFromAnotherNodeIsIgnored(t *testing.T) {
	t.Parallel()
	otp := erltest.Releases()[0]
	called := erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("called")})
	forger := erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("forger")})
	called.Eval(t, `register(gate, spawn(fun() ->
		receive {'$gen_call', From, open} -> receive release -> gen_server:reply(From, released) end end
	end)), ok.`)
	a := connectTo(t, called)
	b := connectTo(t, forger)

	type result struct {
		reply etf.Term
		err   error
	}
	done := make(chan result, 1)
	go func() {
		r, err := a.Call(connectCtx(t), "gen_server", "call", etf.Atom("gate"), etf.Atom("open"), etf.Atom("infinity"))
		done <- result{r, err}
	}()
	lc := a.current()
	var ref etf.Ref
	eventually(t, peerTimeout, "the call to wait for its reply", func() bool {
		lc.dist.waitMu.Lock()
		defer lc.dist.waitMu.Unlock()
		for r := range lc.dist.waiting {
			ref = r
		}
		return len(lc.dist.waiting) == 1
	})

	// erlang:send/2 on the forger sends the forged reply to our pid, and
	// its own reply follows on the same connection: once we have that,
	// the forged one has been read.
	dropped := b.current().dist.stats.dropped.Load()
	if _, err := b.Call(connectCtx(t), "erlang", "send", a.local.self.Self(), etf.Tuple{ref, etf.Atom("forged")}); err != nil {
		t.Fatal(err)
	}
	if n := b.current().dist.stats.dropped.Load() - dropped; n != 1 {
		t.Errorf("%d messages dropped on the forger's connection, want 1", n)
	}
	select {
	case r := <-done:
		t.Fatalf("the call returned before its node answered: %v, %v", r.reply, r.err)
	default:
	}
	called.Eval(t, "gate ! release.")
	r := waitResult(t, done)
	if r.err != nil || r.reply != etf.Atom("released") {
		t.Errorf("the call returned %v, %v; want its own node's answer, released", r.reply, r.err)
	}
}

// TestFloodDelaysNobodyElse: a node that floods the exporter's pid with
// messages does not delay the calls to another node past their deadline,
// nor make their replies get lost.
func TestFloodDelaysNobodyElse(t *testing.T) {
	t.Parallel()
	const (
		calls    = 200
		deadline = 5 * time.Second
	)
	otp := erltest.Releases()[0]
	flooder := erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("flooder")})
	quiet := erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("quiet")})
	flooded := connectTo(t, flooder)
	client := connectTo(t, quiet)

	// Four processes on the flooding node send, as fast as distribution
	// lets them, messages shaped like replies and messages that are not,
	// until their parent is killed.
	flooder.Eval(t, `register(flood, spawn(fun() ->
		receive {go, To} ->
			[spawn_link(fun F() -> To ! {make_ref(), junk}, To ! junk, F() end) || _ <- lists:seq(1, 4)],
			receive stop -> ok end
		end
	end)), ok.`)
	t.Cleanup(func() { flooder.TryEval("exit(whereis(flood), kill).", erltest.EvalTimeout) })
	if _, err := flooded.Call(connectCtx(t), "erlang", "send", etf.Atom("flood"), etf.Tuple{etf.Atom("go"), flooded.local.self.Self()}); err != nil {
		t.Fatal(err)
	}
	in := flooded.current().dist.stats.msgsIn.Load
	eventually(t, peerTimeout, "the flood to start", func() bool { return in() > 10_000 })

	start := in()
	var slowest time.Duration
	for i := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		began := time.Now()
		got, err := client.Call(ctx, "erlang", "node")
		took := time.Since(began)
		cancel()
		if err != nil || got != etf.Atom(quiet.Name) {
			t.Fatalf("call %d during the flood: %v, %v after %s", i, got, err, took.Round(time.Millisecond))
		}
		slowest = max(slowest, took)
	}
	flooding := in() - start
	t.Logf("%d calls to the quiet node while %d messages arrived from the flooder; slowest call %s",
		calls, flooding, slowest.Round(time.Microsecond))
	if flooding < calls {
		t.Errorf("only %d flood messages arrived during the calls: the flood had stopped", flooding)
	}
	if !flooded.Up() {
		t.Error("the flooded connection ended")
	}
}
