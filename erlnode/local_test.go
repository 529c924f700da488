package erlnode

import (
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// TestLiveShortAndLongNames: one process monitors a short-name and a
// long-name node, each through a local node of its own name style, as a
// fleet of both kinds does. The short-name node goes down before the
// long-name one is first connected: ergo reads a package variable, which
// each of its node starts writes, when a connection goes down, so under
// -race a local node started after another node's connections exist is
// reported. Each node must be called, and answer as itself.
func TestLiveShortAndLongNames(t *testing.T) {
	t.Parallel()
	for _, otp := range erltest.Releases() {
		t.Run("OTP "+otp, func(t *testing.T) {
			short := erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("short")})
			long := erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("long"), LongName: true})
			if !strings.Contains(long.Name, "@127.0.0.1") {
				t.Fatalf("the long-name node is called %s", long.Name)
			}
			callNode := func(c *Client, want string) {
				t.Helper()
				got, err := c.Call(connectCtx(t), "erlang", "node")
				if err != nil || got != etf.Atom(want) {
					t.Fatalf("node() through %s's client: %v, %v", want, got, err)
				}
			}
			a := connectTo(t, short)
			callNode(a, short.Name)
			short.Kill(t)
			eventually(t, peerTimeout, "the client to see its node down", func() bool { return !a.Up() })

			b := connectTo(t, long)
			callNode(b, long.Name)
			for c, style := range map[*Client]string{a: "short", b: "long"} {
				_, host, _ := strings.Cut(c.LocalName(), "@")
				if strings.Contains(host, ".") != (style == "long") {
					t.Errorf("the %s-name node's client is %s", style, c.LocalName())
				}
			}
		})
	}
}
