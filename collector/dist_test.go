package collector

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// Captured from OTP 25 and 27 nodes: the value of distExpr on a node linked
// to a TCP peer and the exporter, and on one linked to a TLS peer.
var (
	distTCPStats = props("recv_oct", 521, "recv_cnt", 7, "send_oct", 518, "send_cnt", 6, "send_pend", 25950)
	distReply    = etf.Tuple{1048576,
		etf.List{
			etf.Tuple{etf.Atom("peer_12277_7@vm"), etf.Tuple{etf.Atom("ok"), distTCPStats}},
			etf.Tuple{etf.Atom("beam_exporter@vm"), etf.Tuple{etf.Atom("ok"), distTCPStats}},
			etf.Tuple{etf.Atom("gone@vm"), etf.Tuple{etf.Atom("error"), etf.Atom("einval")}},
		},
		etf.List{
			etf.Tuple{etf.Atom("tls_peer@vm"), etf.Tuple{etf.Atom("ok"), etf.List{
				etf.Tuple{etf.Atom("owner"), etf.Pid{Node: "a@vm", ID: 105}},
				etf.Tuple{etf.Atom("state"), etf.Atom("up")},
				etf.Tuple{etf.Atom("type"), etf.Atom("normal")},
				etf.Tuple{etf.Atom("in"), 6}, etf.Tuple{etf.Atom("out"), 5},
			}}},
			etf.Tuple{etf.Atom("left@vm"), etf.Tuple{etf.Atom("error"), etf.Atom("bad_node")}},
		},
	}
)

// distNode names the exporter as erlnode.Client does.
type distNode struct{ *fakeNode }

func (distNode) LocalName() string { return "beam_exporter@vm" }

func TestDist(t *testing.T) {
	report, err := parseDist(distReply, "beam_exporter@vm")
	if err != nil {
		t.Fatal(err)
	}
	if len(report.links) != 2 || report.links[0].peer != "peer_12277_7@vm" || report.links[1].peer != "tls_peer@vm" {
		t.Fatalf("links = %+v, want the TCP and the TLS peer only", report.links)
	}
	a := &collectorAdapter{c: distCollector{}, node: distNode{&fakeNode{replies: map[string]etf.Term{
		callKey("erl_eval", "expr", []etf.Term{distExpr, etf.List{}}): etf.Tuple{etf.Atom("value"), distReply, etf.List{}},
	}}}}
	compareAdapter(t, a, `
# HELP beam_dist_buffer_busy_limit_bytes Bytes queued on a distribution link beyond which senders to that peer are suspended (erlang:system_info(dist_buf_busy_limit), +zdbbl). Up to one slow tier old.
# TYPE beam_dist_buffer_busy_limit_bytes gauge
beam_dist_buffer_busy_limit_bytes 1.048576e+06
# HELP beam_dist_link_info Always 1, one per distribution link but the exporter's own; controller is port (TCP: bytes, packets and queue exported) or process (TLS and other carriers: packets only). Up to one slow tier old.
# TYPE beam_dist_link_info gauge
beam_dist_link_info{controller="port",peer="peer_12277_7@vm"} 1
beam_dist_link_info{controller="process",peer="tls_peer@vm"} 1
`, "beam_dist_buffer_busy_limit_bytes", "beam_dist_link_info")
}

func TestDistMalformed(t *testing.T) {
	for name, reply := range map[string]etf.Term{
		"not a tuple":        etf.List{},
		"negative limit":     etf.Tuple{-1, etf.List{}, etf.List{}},
		"port list is atom":  etf.Tuple{1, etf.Atom("x"), etf.List{}},
		"peer not an atom":   etf.Tuple{1, etf.List{etf.Tuple{[]byte("a@b"), etf.Tuple{etf.Atom("ok"), distTCPStats}}}, etf.List{}},
		"stat missing":       etf.Tuple{1, etf.List{etf.Tuple{etf.Atom("a@b"), etf.Tuple{etf.Atom("ok"), props("recv_oct", 1)}}}, etf.List{}},
		"neither ok nor err": etf.Tuple{1, etf.List{etf.Tuple{etf.Atom("a@b"), etf.Tuple{etf.Atom("maybe"), etf.List{}}}}, etf.List{}},
		"node_info no out":   etf.Tuple{1, etf.List{}, etf.List{etf.Tuple{etf.Atom("a@b"), etf.Tuple{etf.Atom("ok"), props("in", 1)}}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseDist(reply, ""); err == nil {
				t.Fatal("parseDist accepted it")
			}
		})
	}
}
