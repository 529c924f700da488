package erlnode

import (
	"errors"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// watchConnections subscribes a process on the node to every node that
// connects to it, hidden ones included; connectionsSeen reports them.
const watchConnections = `Self = self(),
	W = spawn(fun() ->
		ok = net_kernel:monitor_nodes(true, [{node_type, all}]),
		Self ! {watching, self()},
		(fun Loop(Seen) ->
			receive
				{report, From} -> From ! {seen, self(), lists:reverse(Seen)}, Loop(Seen);
				Event -> Loop([Event | Seen])
			end
		end)([])
	end),
	register(relay_watch, W),
	receive {watching, W} -> ok after 10000 -> timeout end.`

const connectionsSeen = `relay_watch ! {report, self()},
	receive {seen, _, Seen} -> {Seen, nodes(connected)} after 10000 -> timeout end.`

// TestRelayGetsNoDigest is the attack the name check stops. The exporter is
// sent to a node name that an attacker answers for; the attacker opens a
// handshake of its own to a real node that shares the exporter's cookie and
// passes the real node's challenge on. The exporter must see the real
// node's name in the challenge, send nothing, and count and log wrong_node;
// the real node must see no connection. As a control, the same relay, when
// the exporter is sent to the real node's own name, does log it in to the
// node, so the watch on the node would have seen the attack succeed.
func TestRelayGetsNoDigest(t *testing.T) {
	for _, otp := range erltest.Releases() {
		t.Run("OTP"+otp, func(t *testing.T) {
			t.Parallel()
			real := erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("relay_real")})
			if got := real.Eval(t, watchConnections); got != "ok" {
				t.Fatalf("watching the node's connections: %s", got)
			}
			_, host, _ := SplitNodeName(real.Name)
			target := erltest.UniqueName("relay_attacker") + "@" + host

			port, relayed := startRelay(t, real.Port(t))
			var logs logBuffer
			client, err := New(Config{Target: target, Cookie: real.Cookie, DistPort: port, Logger: logs.logger()})
			if err != nil {
				t.Fatal(err)
			}
			err = client.EnsureConnected(connectCtx(t))
			res := waitResult(t, relayed)
			client.Close()
			if res.err != nil {
				t.Fatalf("relay: %v", res.err)
			}
			if res.challengeName != real.Name {
				t.Fatalf("the relay passed on a challenge from %q, want %s", res.challengeName, real.Name)
			}
			if res.replied {
				t.Error("the exporter answered the relayed challenge: it sent its digest")
			}
			if !errors.Is(err, ErrWrongNode) {
				t.Errorf("error %v, want %v", err, ErrWrongNode)
			}
			if n := client.ConnectionErrors()[ReasonWrongNode]; n != 1 {
				t.Errorf("connection errors %v, want wrong_node 1", client.ConnectionErrors())
			}
			if lines := logs.Lines("reason=wrong_node", target, real.Name); len(lines) != 1 {
				t.Errorf("want one log line with wrong_node and both names; log:\n%s", logs.String())
			}
			if got := real.Eval(t, connectionsSeen); got != "{[],[]}" {
				t.Errorf("the real node saw connections {Seen, nodes(connected)} = %s\nnode output:\n%s", got, real.Output())
			}

			// The control: the relay works when the names agree, and the
			// watch sees it.
			port, relayed = startRelay(t, real.Port(t))
			control, err := New(Config{Target: real.Name, Cookie: real.Cookie, DistPort: port})
			if err != nil {
				t.Fatal(err)
			}
			defer control.Close()
			if err := control.EnsureConnected(connectCtx(t)); err != nil {
				t.Fatalf("control: %v", err)
			}
			if res := waitResult(t, relayed); !res.replied || res.err != nil {
				t.Fatalf("control: the relay saw %+v", res)
			}
			if got, err := control.Call(connectCtx(t), "erlang", "node"); err != nil || got != etf.Atom(real.Name) {
				t.Fatalf("control: erlang:node() = %v, %v", got, err)
			}
			if got := real.Eval(t, connectionsSeen); !strings.Contains(got, "nodeup") || !strings.Contains(got, control.LocalName()) {
				t.Errorf("control: the real node saw %s, want a nodeup of %s", got, control.LocalName())
			}
		})
	}
}
