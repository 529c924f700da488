// Live tests of the dist collector: clusters of real nodes, over TCP and TLS.

package collector

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/beam-exporter/beam_exporter/alerts"
	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

// cluster starts a node for the exporter and a peer with the same cookie and
// carrier, connects them, and registers a sink on the peer that drops what
// it receives.
func cluster(t *testing.T, otp string, args ...string) (target, peer *erltest.Node) {
	t.Helper()
	target = startNode(t, otp, args...)
	peer = erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("peer"), Cookie: target.Cookie, Args: args})
	peer.Eval(t, `register(sink, spawn(fun F() -> receive _ -> F() end end)), ok.`)
	if got := target.Eval(t, fmt.Sprintf("net_kernel:connect_node('%s').", peer.Name)); got != "true" {
		t.Fatalf("connecting %s to %s: %s", target.Name, peer.Name, got)
	}
	return target, peer
}

// sendToSink sends n bytes in 64 KiB binaries from target to the peer's sink
// and waits until the peer has them all.
func sendToSink(t *testing.T, target, peer *erltest.Node, n int) {
	t.Helper()
	target.Eval(t, fmt.Sprintf(`B = binary:copy(<<7>>, 65536), [{sink, '%s'} ! B || _ <- lists:seq(1, %d)], ok.`, peer.Name, n/65536))
	// A round trip after the data: the link delivers in order.
	target.Eval(t, fmt.Sprintf(`ok = erpc:call('%s', erlang, apply, [fun() -> ok end, []]).`, peer.Name))
}

func TestLiveDistTCP(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		target, peer := cluster(t, otp)
		l := connect(t, target, liveOptions{collectors: []string{"dist"}})
		fams := l.scrape(t)
		if _, ok := lookup(fams, "beam_dist_link_info", "peer", l.client.LocalName()); ok {
			t.Errorf("the exporter's own link %s is exported", l.client.LocalName())
		}
		if v := value(t, fams, "beam_dist_link_info", "peer", peer.Name, "controller", "port"); v != 1 {
			t.Errorf("beam_dist_link_info{peer=%q} = %v", peer.Name, v)
		}
		if n := len(fams["beam_dist_link_info"].GetMetric()); n != 1 {
			t.Errorf("%d links exported, want only the one to %s", n, peer.Name)
		}
		limit := evalFloat(t, target, "erlang:system_info(dist_buf_busy_limit).")
		if v := value(t, fams, "beam_dist_buffer_busy_limit_bytes"); v != limit {
			t.Errorf("beam_dist_buffer_busy_limit_bytes = %v, the node says %v", v, limit)
		}
		sentBefore := value(t, fams, "beam_dist_sent_bytes_total", "peer", peer.Name)
		packetsBefore := value(t, fams, "beam_dist_sent_packets_total", "peer", peer.Name)
		const bytes = 8 << 20
		sendToSink(t, target, peer, bytes)
		fams = l.scrape(t)
		if d := value(t, fams, "beam_dist_sent_bytes_total", "peer", peer.Name) - sentBefore; d < bytes {
			t.Errorf("sending %d bytes raised beam_dist_sent_bytes_total by %v", bytes, d)
		}
		if d := value(t, fams, "beam_dist_sent_packets_total", "peer", peer.Name) - packetsBefore; d < bytes/65536 {
			t.Errorf("sending %d messages raised beam_dist_sent_packets_total by %v", bytes/65536, d)
		}
		lintFamilies(t, fams)
		// The peer's side of the same link, seen from an exporter on the peer.
		p := connect(t, peer, liveOptions{collectors: []string{"dist"}})
		if v := value(t, p.scrape(t), "beam_dist_received_bytes_total", "peer", target.Name); v < bytes {
			t.Errorf("the peer received %v bytes from the target, want at least %d", v, bytes)
		}
	})
}

func TestLiveDistTLS(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		args, ca := erltest.TLSDistArgs(t, otp)
		target, peer := cluster(t, otp, args...)
		cert, key := ca.Issue(t, "exporter", "exporter")
		tlsConfig, err := erlnode.TLSFiles{CAFile: ca.CertFile, CertFile: cert, KeyFile: key}.Config()
		if err != nil {
			t.Fatal(err)
		}
		l := connect(t, target, liveOptions{collectors: []string{"dist"}, configure: func(c *erlnode.Config) { c.TLS = tlsConfig }})
		fams := l.scrape(t)
		if v := value(t, fams, "beam_dist_link_info", "peer", peer.Name, "controller", "process"); v != 1 {
			t.Errorf("beam_dist_link_info{peer=%q,controller=process} = %v", peer.Name, v)
		}
		before := value(t, fams, "beam_dist_sent_packets_total", "peer", peer.Name)
		const messages = 64
		sendToSink(t, target, peer, messages*65536)
		if d := value(t, l.scrape(t), "beam_dist_sent_packets_total", "peer", peer.Name) - before; d < 1 {
			t.Errorf("sending %d messages over TLS raised beam_dist_sent_packets_total by %v", messages, d)
		}
		if _, ok := lookup(fams, "beam_dist_link_info", "peer", l.client.LocalName()); ok {
			t.Errorf("the exporter's own link %s is exported", l.client.LocalName())
		}
	})
}

// A peer that stops reading: the target's port queue to it rises past inet's
// high watermark, where the port turns busy, and stays there. What lies
// beyond waits in the distribution buffer (up to the busy limit), which no
// call reads.
func TestLiveDistBusy(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		target, peer := cluster(t, otp)
		l := connect(t, target, liveOptions{collectors: []string{"dist"}})
		limit := value(t, l.scrape(t), "beam_dist_buffer_busy_limit_bytes")
		peer.Signal(t, syscall.SIGSTOP)
		t.Cleanup(func() { peer.Signal(t, syscall.SIGCONT) })
		target.Eval(t, fmt.Sprintf(`B = binary:copy(<<7>>, 65536), spawn(fun F() -> {sink, '%s'} ! B, F() end), ok.`, peer.Name))
		var queued float64
		waitFor(t, "the queue to the stopped peer to pass the port's high watermark", func() bool {
			queued = value(t, l.scrape(t), "beam_dist_send_queue_bytes", "peer", peer.Name)
			return queued > 8192
		})
		t.Logf("queued %v bytes against a busy limit of %v", queued, limit)
		checkDistAlert(t, peer.Name, queued)
	})
}

// checkDistAlert evaluates BEAMDistLinkBlocked's expression, as shipped,
// with promtool over a series that holds the queue the test saw: it must
// select the link once a whole window has been above the level.
func checkDistAlert(t *testing.T, peer string, queued float64) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not on PATH (make deps installs it)")
	}
	rules, err := alerts.Rules()
	if err != nil {
		t.Fatal(err)
	}
	var expr string
	for _, r := range rules {
		if r.Alert == "BEAMDistLinkBlocked" {
			expr = r.Expr
		}
	}
	if expr == "" {
		t.Fatal("no BEAMDistLinkBlocked rule")
	}
	dir := t.TempDir()
	labels := fmt.Sprintf(`instance="target:9537",job="beam",peer="%s"`, peer)
	test := fmt.Sprintf(`tests:
  - interval: 1m
    input_series:
      - series: 'beam_dist_send_queue_bytes{%[1]s}'
        values: '0 %[2]vx10'
    promql_expr_test:
      - expr: '%[3]s'
        eval_time: 1m
        exp_samples: []
      - expr: '%[3]s'
        eval_time: 5m
        exp_samples:
          - labels: '{%[1]s}'
            value: %[2]v
`, labels, queued, expr)
	file := filepath.Join(dir, "dist_test.yml")
	if err := os.WriteFile(file, []byte(test), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("BEAMDistLinkBlocked's expression over the queue seen (%v bytes): %v\n%s", queued, err, out)
	}
}

// The probe's distribution watcher: a link dropped and made again is one
// more connection and one disconnection for its reason; a peer killed is a
// closed connection; and the watcher goes when the exporter does.
func TestLiveDistReconnect(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		target, peer := cluster(t, otp)
		l := connect(t, target, liveOptions{loadProbe: true, collectors: []string{"dist"}})
		fams := l.scrape(t)
		// The watcher started with this scrape, after the link came up.
		if v := value(t, fams, "beam_dist_link_connections_total", "peer", peer.Name); v != 0 {
			t.Errorf("beam_dist_link_connections_total{peer=%q} = %v before any reconnection", peer.Name, v)
		}
		if _, ok := lookup(fams, "beam_dist_link_connections_total", "peer", l.client.LocalName()); ok {
			t.Errorf("the exporter's own link %s is exported", l.client.LocalName())
		}
		for _, reason := range distDownReasons {
			if v := value(t, fams, "beam_dist_disconnections_total", "reason", reason); v != 0 {
				t.Errorf("beam_dist_disconnections_total{reason=%q} = %v before any disconnection", reason, v)
			}
		}

		target.Eval(t, fmt.Sprintf(`true = erlang:disconnect_node('%[1]s'), true = net_kernel:connect_node('%[1]s').`, peer.Name))
		waitFor(t, "the reconnection to be counted", func() bool {
			fams = l.scrape(t)
			ups, _ := lookup(fams, "beam_dist_link_connections_total", "peer", peer.Name)
			downs, _ := lookup(fams, "beam_dist_disconnections_total", "reason", "disconnect")
			return ups == 1 && downs == 1
		})
		if v := sumOf(fams, "beam_dist_disconnections_total"); v != 1 {
			t.Errorf("%v disconnections counted in all, want the one", v)
		}

		peer.Kill(t)
		waitFor(t, "the killed peer's link to be counted closed", func() bool {
			fams = l.scrape(t)
			v, _ := lookup(fams, "beam_dist_disconnections_total", "reason", "connection_closed")
			return v == 1
		})
		if _, ok := lookup(fams, "beam_dist_link_connections_total", "peer", peer.Name); ok {
			t.Errorf("the killed peer %s still has a series", peer.Name)
		}

		l.client.Close()
		waitFor(t, "the watcher to leave with the exporter", func() bool {
			return target.Eval(t, `whereis(beam_exporter_probe_v8_dist).`) == "undefined"
		})
	})
}
