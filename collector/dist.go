// The dist collector: traffic and send queues of the node's distribution links, per peer.

package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/erlnode"
)

func init() { register("dist", true, TierSlow, func() Collector { return distCollector{} }) }

var (
	distBusyLimitDesc = prometheus.NewDesc(namespace+"_dist_buffer_busy_limit_bytes",
		"Bytes queued on a distribution link beyond which senders to that peer are suspended (erlang:system_info(dist_buf_busy_limit), +zdbbl). Up to one slow tier old.", nil, nil)
	distLinkDesc = prometheus.NewDesc(namespace+"_dist_link_info",
		"Always 1, one per distribution link but the exporter's own; controller is port (TCP: bytes, packets and queue exported) or process (TLS and other carriers: packets only). Up to one slow tier old.",
		[]string{"peer", "controller"}, nil)
	distSentBytesDesc = prometheus.NewDesc(namespace+"_dist_sent_bytes_total",
		"Bytes sent on the link to peer, since the link came up (inet:getstat send_oct of the controlling port; port-controlled links only). Up to one slow tier old.",
		[]string{"peer"}, nil)
	distReceivedBytesDesc = prometheus.NewDesc(namespace+"_dist_received_bytes_total",
		"Bytes received on the link from peer, since the link came up (inet:getstat recv_oct of the controlling port; port-controlled links only). Up to one slow tier old.",
		[]string{"peer"}, nil)
	distSentPacketsDesc = prometheus.NewDesc(namespace+"_dist_sent_packets_total",
		"Distribution packets sent to peer, since the link came up (inet:getstat send_cnt, or net_kernel:node_info out for process-controlled links). Up to one slow tier old.",
		[]string{"peer"}, nil)
	distReceivedPacketsDesc = prometheus.NewDesc(namespace+"_dist_received_packets_total",
		"Distribution packets received from peer, since the link came up (inet:getstat recv_cnt, or net_kernel:node_info in for process-controlled links). Up to one slow tier old.",
		[]string{"peer"}, nil)
	distConnectionsDesc = prometheus.NewDesc(namespace+"_dist_link_connections_total",
		"Times the link to peer came up since the node's distribution watcher started (net_kernel:monitor_nodes, through the probe); a link already up then counts 0, so an increase is a reconnection. Up to one slow tier old.",
		[]string{"peer"}, nil)
	distDisconnectionsDesc = prometheus.NewDesc(namespace+"_dist_disconnections_total",
		"Links to visible nodes (the cluster; hidden nodes such as remote shells are left out) that went down since the node's distribution watcher started, by net_kernel's nodedown_reason (other: a reason net_kernel does not document). Up to one slow tier old.",
		[]string{"reason"}, nil)
	distQueueDesc = prometheus.NewDesc(namespace+"_dist_send_queue_bytes",
		"Bytes waiting in the controlling port's queue to be sent to peer (inet:getstat send_pend; port-controlled links only); senders block at beam_dist_buffer_busy_limit_bytes. Up to one slow tier old.",
		[]string{"peer"}, nil)
)

// distStats are the inet:getstat/2 options read from a port-controlled link.
var distStats = []string{"recv_oct", "recv_cnt", "send_oct", "send_cnt", "send_pend"}

// distExpr lists the links in O(peers), never walking erlang:ports():
//
//	{erlang:system_info(dist_buf_busy_limit),
//	 [{N, inet:getstat(C, Stats)} || {N, C} <- erlang:system_info(dist_ctrl), erlang:is_port(C)],
//	 [{N, net_kernel:node_info(N)} || {N, C} <- erlang:system_info(dist_ctrl), erlang:is_pid(C)]}
//
// A TLS link's controller is a process whose socket ssl keeps to itself;
// net_kernel asks the link's own distribution module for its packet counts.
var distExpr = func() expr {
	links := eCall("erlang", "system_info", eAtom("dist_ctrl"))
	link := eTuple(eVar("N"), eVar("C"))
	return eTuple(
		eCall("erlang", "system_info", eAtom("dist_buf_busy_limit")),
		eComprehension(eTuple(eVar("N"), eCall("inet", "getstat", eVar("C"), eAtoms(distStats...))),
			link, links, eCall("erlang", "is_port", eVar("C"))),
		eComprehension(eTuple(eVar("N"), eCall("net_kernel", "node_info", eVar("N"))),
			link, links, eCall("erlang", "is_pid", eVar("C"))),
	)
}()

// distLink is what the node told us about one link.
type distLink struct {
	peer    string
	port    bool // controlled by a port: bytes and queue are known
	recvOct float64
	recvCnt float64
	sendOct float64
	sendCnt float64
	pending float64
}

type distReport struct {
	busyLimit float64
	links     []distLink
}

// localNamer is implemented by nodes that know the exporter's own name
// (*erlnode.Client): its link to the node is the one link left out.
type localNamer interface{ LocalName() string }

// selfer is implemented by nodes that know the pid the exporter calls from
// (*erlnode.Client): the probe's distribution watcher lives while it does.
type selfer interface{ Self() etf.Pid }

// distDownReasons are the nodedown reasons net_kernel documents, and other,
// under which the probe counts any other. All are exported, zeros too, so
// that a first disconnection is an increase of a series already there.
var distDownReasons = []string{
	"connection_closed", "connection_setup_failed", "disconnect", "get_status_failed", "net_kernel_terminated",
	"net_tick_timeout", "no_network", "send_net_tick_failed", "shutdown", "other",
}

// distEvents is what the probe's distribution watcher has counted.
type distEvents struct {
	ups   map[string]float64 // links that came up, by peer
	downs map[string]float64 // links to visible nodes that went down, by reason
}

type distCollector struct{}

// Update reads the links with a fixed expression, which needs no probe, then
// the watcher's counts through the probe. Without the probe
// (--no-erlang.load-probe, or a node that is not an erlnode.Client) the
// counts are left out and the links still exported; a watcher that fails
// fails the whole collector, which the exporter then serves nothing of.
func (distCollector) Update(ctx context.Context, node Node, ch chan<- prometheus.Metric) error {
	reply, err := evaluate(ctx, node, distExpr)
	if err != nil {
		return fmt.Errorf("reading distribution links: %w", err)
	}
	self := ""
	if n, ok := node.(localNamer); ok {
		self = n.LocalName()
	}
	report, err := parseDist(reply, self)
	if err != nil {
		return fmt.Errorf("reading distribution links: %w", err)
	}
	ch <- prometheus.MustNewConstMetric(distBusyLimitDesc, prometheus.GaugeValue, report.busyLimit)
	for _, l := range report.links {
		controller := "process"
		if l.port {
			controller = "port"
			ch <- prometheus.MustNewConstMetric(distReceivedBytesDesc, prometheus.CounterValue, l.recvOct, l.peer)
			ch <- prometheus.MustNewConstMetric(distSentBytesDesc, prometheus.CounterValue, l.sendOct, l.peer)
			ch <- prometheus.MustNewConstMetric(distQueueDesc, prometheus.GaugeValue, l.pending, l.peer)
		}
		ch <- prometheus.MustNewConstMetric(distLinkDesc, prometheus.GaugeValue, 1, l.peer, controller)
		ch <- prometheus.MustNewConstMetric(distReceivedPacketsDesc, prometheus.CounterValue, l.recvCnt, l.peer)
		ch <- prometheus.MustNewConstMetric(distSentPacketsDesc, prometheus.CounterValue, l.sendCnt, l.peer)
	}
	owner, ok := node.(selfer)
	if !ok {
		return nil
	}
	reply, err = node.ProbeCall(ctx, "dist_events", owner.Self())
	if errors.Is(err, erlnode.ErrProbeDisabled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading distribution events: %w", err)
	}
	events, err := parseDistEvents(reply)
	if err != nil {
		return fmt.Errorf("reading distribution events: %w", err)
	}
	// Only the links there now: a peer gone for good would keep its
	// series forever, and its comings and goings are in the reasons.
	for _, l := range report.links {
		ch <- prometheus.MustNewConstMetric(distConnectionsDesc, prometheus.CounterValue, events.ups[l.peer], l.peer)
	}
	for _, reason := range distDownReasons {
		ch <- prometheus.MustNewConstMetric(distDisconnectionsDesc, prometheus.CounterValue, events.downs[reason], reason)
	}
	return nil
}

// parseDistEvents decodes the probe's dist_events/2 answer,
// {ok, #{peers => [{Node, Ups}], downs => [{Reason, Downs}]}}.
func parseDistEvents(t etf.Term) (distEvents, error) {
	e := distEvents{ups: map[string]float64{}, downs: map[string]float64{}}
	body, err := okReply(t)
	if err != nil {
		return e, err
	}
	m, err := erlnode.Map(body)
	if err != nil {
		return e, err
	}
	for _, part := range []struct {
		key    string
		counts map[string]float64
		known  func(string) bool
	}{
		{"peers", e.ups, func(string) bool { return true }},
		{"downs", e.downs, func(r string) bool { return slices.Contains(distDownReasons, r) }},
	} {
		v, err := erlnode.Field(m, part.key)
		if err != nil {
			return e, err
		}
		entries, err := erlnode.List(v)
		if err != nil {
			return e, fmt.Errorf("%s: %w", part.key, err)
		}
		for _, entry := range entries {
			pair, err := erlnode.Tuple(entry, 2)
			if err != nil {
				return e, fmt.Errorf("%s: %w", part.key, err)
			}
			name, err := erlnode.Text(pair[0])
			if err != nil {
				return e, fmt.Errorf("%s: %w", part.key, err)
			}
			if !part.known(name) {
				return e, fmt.Errorf("%s: unknown reason %q", part.key, name)
			}
			if _, dup := part.counts[name]; dup {
				return e, fmt.Errorf("%s: %q twice", part.key, name)
			}
			if part.counts[name], err = erlnode.NonNegative(pair[1]); err != nil {
				return e, fmt.Errorf("%s %q: %w", part.key, name, err)
			}
		}
	}
	return e, nil
}

// parseDist decodes distExpr's value, leaving out the link to self. A link
// that went down between listing and reading ({error, _} from getstat or
// node_info) is left out too: it has no figures any more.
func parseDist(t etf.Term, self string) (distReport, error) {
	var r distReport
	tup, err := erlnode.Tuple(t, 3)
	if err != nil {
		return r, err
	}
	if r.busyLimit, err = erlnode.NonNegative(tup[0]); err != nil {
		return r, fmt.Errorf("dist_buf_busy_limit: %w", err)
	}
	seen := map[string]bool{}
	for i, port := range []bool{true, false} {
		entries, err := erlnode.List(tup[i+1])
		if err != nil {
			return r, err
		}
		for _, e := range entries {
			pair, err := erlnode.Tuple(e, 2)
			if err != nil {
				return r, fmt.Errorf("link: %w", err)
			}
			peer, err := erlnode.Atom(pair[0])
			if err != nil {
				return r, fmt.Errorf("link peer: %w", err)
			}
			if peer == self || seen[peer] {
				continue
			}
			link, ok, err := parseLinkStats(pair[1], port)
			if err != nil {
				return r, fmt.Errorf("link to %s: %w", peer, err)
			}
			if !ok {
				continue
			}
			seen[peer] = true
			link.peer = peer
			r.links = append(r.links, link)
		}
	}
	sort.Slice(r.links, func(i, j int) bool { return r.links[i].peer < r.links[j].peer })
	return r, nil
}

// parseLinkStats decodes {ok, Stats} from inet:getstat/2 or
// net_kernel:node_info/1; ok is false for {error, _}.
func parseLinkStats(t etf.Term, port bool) (distLink, bool, error) {
	var l distLink
	tup, err := erlnode.Tuple(t, 2)
	if err != nil {
		return l, false, err
	}
	switch tup[0] {
	case etf.Atom("error"):
		return l, false, nil
	case etf.Atom("ok"):
	default:
		return l, false, fmt.Errorf("expected {ok, _} or {error, _}")
	}
	props, err := erlnode.Proplist(tup[1])
	if err != nil {
		return l, false, err
	}
	read := func(key string) (float64, error) {
		v, err := erlnode.Field(props, key)
		if err != nil {
			return 0, err
		}
		return erlnode.NonNegative(v)
	}
	l.port = port
	if !port {
		if l.recvCnt, err = read("in"); err != nil {
			return l, false, err
		}
		if l.sendCnt, err = read("out"); err != nil {
			return l, false, err
		}
		return l, true, nil
	}
	for _, f := range []struct {
		key string
		to  *float64
	}{{"recv_oct", &l.recvOct}, {"recv_cnt", &l.recvCnt}, {"send_oct", &l.sendOct}, {"send_cnt", &l.sendCnt}, {"send_pend", &l.pending}} {
		if *f.to, err = read(f.key); err != nil {
			return l, false, err
		}
	}
	return l, true, nil
}
