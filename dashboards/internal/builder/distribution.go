// The Distribution dashboard: per-peer traffic and send queues of the nodes' distribution links, then ports and sockets.

package builder

import "fmt"

func (r renderer) distribution() dashboard {
	dl, df := r.th.DistLinkBlocked, r.th.DistLinkFlapping
	perPeer := "{{instance}} → {{peer}}"
	return dashboard{
		file:  "beam-distribution.json",
		uid:   "beam-distribution",
		title: "BEAM / Distribution and ports",
		description: "Erlang distribution links per peer node: traffic, packet sizes and send queues, with the " +
			"BEAMDistLinkBlocked level (one line per link and direction; the exporter's own link is left out). " +
			"Then the node's ports by driver, its socket-module sockets and its active tasks.",
		panels: []panel{
			{
				typ: "stat", title: "Links per node", unit: "none", w: 6, h: 5,
				targets: []target{instant(`count by (instance) (`+r.sel("beam_dist_link_info")+`)`, "{{instance}}")},
				description: "Distribution links of each node to other nodes (beam_dist_link_info), hidden nodes included. " +
					"In a full mesh every node has one link fewer than the cluster has nodes; a node with fewer links " +
					"than its peers is partitioned from some of them.",
			},
			{
				typ: "stat", title: "Distribution buffer busy limit", unit: "bytes", w: 6, h: 5,
				targets: []target{instant(r.sel("beam_dist_buffer_busy_limit_bytes"), "{{instance}}")},
				description: "erlang:system_info(dist_buf_busy_limit), set with +zdbbl (1 MiB by default): the bytes a link " +
					"may buffer before every process sending to that peer is suspended. Raising it absorbs bursts; it " +
					"does not help a peer that is slower than the sender on average.",
			},
			{
				typ: "table", title: "Links", unit: "none", w: 12, h: 5,
				targets:    []target{tableQ(r.sel("beam_dist_link_info"))},
				transforms: []any{organize([]string{"Value", "job"}, nil, []string{"instance", "peer", "controller"})},
				description: "Every link with its controller: port for TCP distribution, whose bytes and send queue are " +
					"read; process for TLS and other carriers, which give packet counts only.",
			},
			{
				typ: "timeseries", title: "Bytes sent per link", unit: "Bps", w: 12, h: 8, min: f(0),
				targets: []target{ts(r.rate("beam_dist_sent_bytes_total"), perPeer)},
				description: "Bytes per second written to each link's socket (inet:getstat send_oct; TCP links). " +
					"Compare links: one peer receiving far more than the others is a hot spot (a global registry, " +
					"a singleton process, a remote ETS reader).",
			},
			{
				typ: "timeseries", title: "Bytes received per link", unit: "Bps", w: 12, h: 8, min: f(0),
				targets:     []target{ts(r.rate("beam_dist_received_bytes_total"), "{{instance}} ← {{peer}}")},
				description: "Bytes per second read from each link's socket (inet:getstat recv_oct; TCP links).",
			},
			{
				typ: "timeseries", title: "Packets per link", unit: "pps", w: 12, h: 8, min: f(0),
				targets: []target{
					ts(r.rate("beam_dist_sent_packets_total"), perPeer+" sent"),
					ts(r.rate("beam_dist_received_packets_total"), "{{instance}} ← {{peer}} received"),
				},
				description: "Distribution packets per second on every link, TLS links included (over TLS a packet is a " +
					"socket write that may carry several messages). With ticks only, a link carries a few packets a minute.",
			},
			{
				typ: "timeseries", title: "Average packet size sent", unit: "bytes", w: 12, h: 8, min: f(0),
				targets: []target{ts(r.rate("beam_dist_sent_bytes_total")+"\n  /\n"+r.rate("beam_dist_sent_packets_total"), perPeer)},
				description: "Bytes per packet sent on each TCP link. Packets of hundreds of kilobytes mean large terms " +
					"travel between nodes: each one holds the link, delays every message behind it, including net ticks, " +
					"and fills the distribution buffer fast.",
			},
			{
				typ: "timeseries", title: "Send queue per link", unit: "bytes", w: 12, h: 8, min: f(0),
				targets:       []target{ts(r.sel("beam_dist_send_queue_bytes"), perPeer)},
				thresholdKeys: levels("dist_link_blocked", "warning"),
				description: "Bytes waiting in the link's port queue (inet:getstat send_pend; TCP links). It is 0 while " +
					"the peer keeps up. Past the line, inet's high watermark, the port is busy and further data waits in " +
					"the distribution buffer, which no call reads, until senders are suspended at the busy limit; so a " +
					"blocked link sits just above the line rather than climbing to the busy limit.",
			},
			{
				typ: "timeseries", title: fmt.Sprintf("Smallest send queue over %s", dl.Window), unit: "bytes", w: 12, h: 8, min: f(0),
				targets:       []target{ts(fmt.Sprintf("min_over_time(%s[%s])", r.sel("beam_dist_send_queue_bytes"), dl.Window), perPeer)},
				thresholdKeys: levels("dist_link_blocked", "warning"),
				description: fmt.Sprintf("The quantity of the BEAMDistLinkBlocked alert: the smallest queue of each link "+
					"over %s windows. Above the line the queue never drained in the window; the alert fires after %s of that.",
					dl.Window, dl.Warning.For),
			},
			{
				typ: "timeseries", title: fmt.Sprintf("Link reconnections over %s", df.Window), unit: "short", w: 12, h: 8, min: f(0),
				targets:       []target{ts(fmt.Sprintf("increase(%s[%s])", r.sel("beam_dist_link_connections_total"), df.Window), perPeer)},
				thresholdKeys: levels("dist_link_flapping", "warning"),
				description: fmt.Sprintf("The quantity of the BEAMDistLinkFlapping alert: how many times each link came up "+
					"again over %s windows (beam_dist_link_connections_total, from the probe's watcher of net_kernel's node "+
					"events). 0 on a healthy cluster; the alert fires after %s above the line.", df.Window, df.Warning.For),
			},
			{
				typ: "timeseries", title: "Disconnections by reason", unit: "short", w: 12, h: 8, min: f(0),
				targets: []target{ts(`sum by (job, instance, reason) (increase(`+r.sel("beam_dist_disconnections_total")+`[$__rate_interval]))`, "{{instance}} {{reason}}")},
				description: "Links to visible nodes that went down in the interval, by net_kernel's nodedown_reason: " +
					"net_tick_timeout (the link was silent for net_ticktime: a partition, or a peer stopped or too busy to " +
					"tick), connection_closed (the socket closed: a peer restarted or crashed, or the network cut it), " +
					"disconnect (erlang:disconnect_node/1 on this node). Hidden nodes such as remote shells are left out.",
			},
			{
				typ: "timeseries", title: "Distribution share of port IO", unit: "percentunit", w: 12, h: 8, min: f(0),
				targets: []target{ts(`(
  sum by (job, instance) (`+r.rate("beam_dist_sent_bytes_total")+`)
  +
  sum by (job, instance) (`+r.rate("beam_dist_received_bytes_total")+`)
)
  /
(
  sum by (job, instance) (`+r.rate("beam_io_sent_bytes_total")+`)
  +
  sum by (job, instance) (`+r.rate("beam_io_received_bytes_total")+`)
)`, "{{instance}}")},
				description: "Distribution bytes (TCP links) as a share of all bytes through the node's ports " +
					"(statistics(io)). Near 100% the node mostly talks to other nodes; a sudden rise with flat client " +
					"traffic is a change in how the cluster shares work or data.",
			},
			{
				typ: "timeseries", title: "Ports by driver", unit: "short", w: 12, h: 8, min: f(0),
				targets: []target{ts(r.sel("beam_ports_by_driver"), "{{instance}} {{driver}}")},
				description: "Open ports by driver: tcp_inet and udp_inet are gen_tcp and gen_udp sockets, spawn the " +
					"OS processes started with open_port, other the drivers beyond --collector.ports.top-n. A server's " +
					"tcp_inet follows its connections; a count that only grows is a socket leak (connections never closed).",
			},
			{
				typ: "timeseries", title: "Socket-module sockets", unit: "short", w: 6, h: 8, min: f(0),
				targets: []target{ts(r.sel("beam_sockets"), "{{instance}}")},
				description: "Sockets of the socket module (socket:number_of/0), which are not ports: used directly, " +
					"or by gen_tcp and gen_udp with {inet_backend, socket}. Zero on most nodes.",
			},
			{
				typ: "timeseries", title: "Active tasks by scheduler type", unit: "short", w: 6, h: 8, min: f(0),
				targets: []target{ts(r.sel("beam_active_tasks"), "{{instance}} {{type}}")},
				description: "Processes and ports running or ready to run on each type of scheduler, at the refresh " +
					"(statistics(active_tasks_all)). Above the online schedulers of the type, work waits: compare with " +
					"the run queue panels of the Overview dashboard.",
			},
		},
	}
}
