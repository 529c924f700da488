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

// distProbeNode is a distNode that gives its pid, as erlnode.Client does:
// the dist collector then asks the probe's watcher too.
type distProbeNode struct{ distNode }

var distOwner = etf.Pid{Node: "beam_exporter@vm", ID: 77}

func (distProbeNode) Self() etf.Pid { return distOwner }

// Captured from an OTP 25 node whose link to capB@vm was made, dropped with
// erlang:disconnect_node/1 and made again after the watcher started.
var distEventsReply = etf.Tuple{etf.Atom("ok"), etf.Map{
	etf.Atom("downs"): etf.List{etf.Tuple{[]byte("disconnect"), 1}},
	etf.Atom("peers"): etf.List{etf.Tuple{[]byte("peer_12277_7@vm"), 2}, etf.Tuple{[]byte("gone@vm"), 1}},
}}

func TestDistEvents(t *testing.T) {
	node := func(events etf.Term) distProbeNode {
		return distProbeNode{distNode{&fakeNode{replies: map[string]etf.Term{
			callKey("erl_eval", "expr", []etf.Term{distExpr, etf.List{}}): etf.Tuple{etf.Atom("value"), distReply, etf.List{}},
			callKey("probe", "dist_events", []etf.Term{distOwner}):        events,
		}}}}
	}
	// Peers come from the links there now: tls_peer@vm, up since before
	// the watcher, is 0; gone@vm, not linked any more, is left out.
	a := &collectorAdapter{c: distCollector{}, node: node(distEventsReply)}
	compareAdapter(t, a, `
# HELP beam_dist_disconnections_total Links to visible nodes (the cluster; hidden nodes such as remote shells are left out) that went down since the node's distribution watcher started, by net_kernel's nodedown_reason (other: a reason net_kernel does not document). Up to one slow tier old.
# TYPE beam_dist_disconnections_total counter
beam_dist_disconnections_total{reason="connection_closed"} 0
beam_dist_disconnections_total{reason="connection_setup_failed"} 0
beam_dist_disconnections_total{reason="disconnect"} 1
beam_dist_disconnections_total{reason="get_status_failed"} 0
beam_dist_disconnections_total{reason="net_kernel_terminated"} 0
beam_dist_disconnections_total{reason="net_tick_timeout"} 0
beam_dist_disconnections_total{reason="no_network"} 0
beam_dist_disconnections_total{reason="other"} 0
beam_dist_disconnections_total{reason="send_net_tick_failed"} 0
beam_dist_disconnections_total{reason="shutdown"} 0
# HELP beam_dist_link_connections_total Times the link to peer came up since the node's distribution watcher started (net_kernel:monitor_nodes, through the probe); a link already up then counts 0, so an increase is a reconnection. Up to one slow tier old.
# TYPE beam_dist_link_connections_total counter
beam_dist_link_connections_total{peer="peer_12277_7@vm"} 2
beam_dist_link_connections_total{peer="tls_peer@vm"} 0
`, "beam_dist_link_connections_total", "beam_dist_disconnections_total")

	for name, reply := range map[string]etf.Term{
		"refused":        etf.Tuple{etf.Atom("error"), etf.Atom("badarg")},
		"not a map":      etf.Tuple{etf.Atom("ok"), etf.List{}},
		"no downs":       etf.Tuple{etf.Atom("ok"), etf.Map{etf.Atom("peers"): etf.List{}}},
		"unknown reason": etf.Tuple{etf.Atom("ok"), etf.Map{etf.Atom("peers"): etf.List{}, etf.Atom("downs"): etf.List{etf.Tuple{[]byte("boom"), 1}}}},
		"reason twice": etf.Tuple{etf.Atom("ok"), etf.Map{etf.Atom("peers"): etf.List{}, etf.Atom("downs"): etf.List{
			etf.Tuple{[]byte("disconnect"), 1}, etf.Tuple{[]byte("disconnect"), 2}}}},
		"negative ups": etf.Tuple{etf.Atom("ok"), etf.Map{etf.Atom("downs"): etf.List{}, etf.Atom("peers"): etf.List{etf.Tuple{[]byte("a@b"), -1}}}},
		"peer a pid":   etf.Tuple{etf.Atom("ok"), etf.Map{etf.Atom("downs"): etf.List{}, etf.Atom("peers"): etf.List{etf.Tuple{distOwner, 1}}}},
	} {
		t.Run(name, func(t *testing.T) {
			a := &collectorAdapter{c: distCollector{}, node: node(reply)}
			collectAll(a)
			if a.err == nil {
				t.Fatal("the dist collector accepted it")
			}
		})
	}
}
