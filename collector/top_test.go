package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/go-kit/log"
)

// getTop requests /top from h, as JSON when asJSON, and returns the status
// and body.
func getTop(t *testing.T, h http.Handler, query string, asJSON bool) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/top"+query, nil)
	if asJSON {
		req.Header.Set("Accept", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

// The process the test puts at rank 1 of the memory and mailbox rankings
// is the one /top names, with the figures erlang:process_info gives on the
// node itself.
func TestLiveTop(t *testing.T) {
	forEachRelease(t, func(t *testing.T, otp string) {
		node := startNode(t, otp)
		l := connect(t, node, liveOptions{loadProbe: true})
		const queued = 200_000
		node.Eval(t, `Self = self(),
			P = spawn(fun() -> register(beam_exporter_top_hog, self()), Self ! registered,
			                   receive stop -> ok end end),
			receive registered -> ok end,
			%% From a process of its own, whose memory goes when it exits,
			%% so that the hog is the largest process.
			spawn(fun() -> [P ! {filler, N} || N <- lists:seq(1, `+strconv.Itoa(queued)+`)], Self ! sent end),
			receive sent -> ok end,
			erlang:garbage_collect(), ok.`)

		h := TopHandler(l.exporter, node.Name, 20*time.Second, log.NewNopLogger())
		status, body := getTop(t, h, "", true)
		if status != http.StatusOK {
			t.Fatalf("/top: %d %s", status, body)
		}
		var snap TopSnapshot
		if err := json.Unmarshal([]byte(body), &snap); err != nil {
			t.Fatalf("/top is not JSON: %v\n%s", err, body)
		}
		onNode, err := strconv.Unquote(node.Eval(t, `P = whereis(beam_exporter_top_hog),
			Info = fun(Item) -> element(2, process_info(P, Item)) end,
			{M, F, A} = Info(current_function),
			{IM, IF, IA} = Info(initial_call),
			lists:flatten(io_lib:format("~s ~b ~b ~s:~s/~b ~s:~s/~b ~b",
				[pid_to_list(P), Info(memory), Info(message_queue_len), M, F, A, IM, IF, IA, Info(reductions)])).`))
		if err != nil {
			t.Fatal(err)
		}
		if snap.Node != node.Name || snap.Processes < 10 || snap.WindowSeconds <= 0 {
			t.Errorf("snapshot header: node %q, %d processes, window %gs", snap.Node, snap.Processes, snap.WindowSeconds)
		}
		for _, ranking := range []struct {
			name string
			rows []TopProcess
		}{{"memory", snap.Memory}, {"message queue", snap.MessageQueue}} {
			if len(ranking.rows) == 0 {
				t.Fatalf("%s: no ranking", ranking.name)
			}
			p := ranking.rows[0]
			got := fmt.Sprintf("%s %.0f %.0f %s %s", p.Pid, p.MemoryBytes, p.MessageQueueLength, p.CurrentFunction, p.InitialCall)
			if !strings.HasPrefix(onNode, got+" ") || p.Rank != 1 || p.Name != "beam_exporter_top_hog" || p.RegisteredName != p.Name || p.Exited {
				t.Errorf("%s rank 1 = %+v\n   /top says %s\nthe node says %s", ranking.name, p, got, onNode)
			}
			// Each process_info of another process is a signal its target
			// handles, for a few reductions: the node's own reads come
			// after the probe's and add some.
			reductions, _ := strconv.ParseFloat(onNode[strings.LastIndex(onNode, " ")+1:], 64)
			if d := reductions - p.Reductions; d < 0 || d > 100 {
				t.Errorf("%s rank 1 had done %.0f reductions, the node says %.0f", ranking.name, p.Reductions, reductions)
			}
		}
		if v := snap.MessageQueue[0].Value; v != queued {
			t.Errorf("message queue rank 1 ranked at %g messages, want %d", v, queued)
		}

		// The same ranking as a page: the pid escaped, the name shown.
		status, page := getTop(t, h, "?target="+node.Name, false)
		pid := strings.Fields(onNode)[0]
		escaped := "&lt;" + strings.Trim(pid, "<>") + "&gt;"
		if status != http.StatusOK || !strings.Contains(page, escaped) || !strings.Contains(page, "beam_exporter_top_hog") {
			t.Errorf("/top page (%d) does not show %s (%s) and the hog:\n%s", status, pid, escaped, page)
		}
		node.Eval(t, "beam_exporter_top_hog ! stop.")
	})
}

// topNode is a node whose processes collector ranks one process, named
// name, that exits before it is described when exited is set.
func topNode(name string, exited bool) *fakeTarget {
	details := described("<0.90.0>", name)
	if exited {
		details = etf.List{}
	}
	return connectedNode(topReply(top("<0.90.0>", 5000), top("<0.90.0>", 7), top("<0.90.0>", 100), details, 500000))
}

// connectedNode is a connected node that answers top_processes with reply.
func connectedNode(reply etf.Term) *fakeTarget {
	n := &fakeTarget{fakeNode: fakeNode{replies: map[string]etf.Term{
		"erlang:system_info(process_count)": 47,
		"probe:top_processes(10,20,0,1)":    reply,
	}}}
	n.up.Store(true)
	return n
}

// stalledNode never answers a probe call.
type stalledNode struct{ *fakeTarget }

func (stalledNode) ProbeCall(ctx context.Context, _ string, _ ...etf.Term) (etf.Term, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestTopHandler(t *testing.T) {
	logger := log.NewNopLogger()
	serve := func(n *fakeTarget, collectors map[string]Collector) http.Handler {
		return TopHandler(newTestExporter(n, time.Minute, collectors), "app@host", time.Second, logger)
	}
	withProcesses := func() map[string]Collector { return map[string]Collector{"processes": &processesCollector{}} }

	t.Run("json", func(t *testing.T) {
		node := connectedNode(topReply(top("<0.90.0>", 5000), top("<0.91.0>", 7), top("<0.92.0>", 100),
			described("<0.90.0>", "big", "<0.91.0>", "queued", "<0.92.0>", "busy"), 500000))
		status, body := getTop(t, serve(node, withProcesses()), "", true)
		var snap TopSnapshot
		if err := json.Unmarshal([]byte(body), &snap); status != http.StatusOK || err != nil {
			t.Fatalf("%d %v: %s", status, err, body)
		}
		if !strings.Contains(body, `"pid":"<0.90.0>"`) {
			t.Errorf("the JSON escapes the pid: %s", body)
		}
		want := TopProcess{Rank: 1, Value: 200, Pid: "<0.92.0>", Name: "busy", RegisteredName: "busy",
			CurrentFunction: "gen_server:loop/7", InitialCall: "proc_lib:init_p/5",
			MemoryBytes: 2000, MessageQueueLength: 3, Reductions: 4000, Time: snap.Time}
		if got := snap.Reductions; len(got) != 1 || got[0] != want {
			t.Errorf("reductions ranking %+v, want [%+v]", got, want)
		}
		if snap.Node != "app@host" || snap.Processes != 47 || snap.WindowSeconds != 0.5 || snap.MemorySlices != 1 ||
			len(snap.Memory) != 1 || snap.Memory[0].Value != 5000 || snap.Memory[0].Name != "big" ||
			len(snap.MessageQueue) != 1 || snap.MessageQueue[0].Value != 7 || snap.MessageQueue[0].Name != "queued" {
			t.Errorf("snapshot %+v", snap)
		}
	})
	t.Run("html escapes what the node sends", func(t *testing.T) {
		status, page := getTop(t, serve(topNode("<script>alert(1)</script>", false), withProcesses()), "?target=app@host", false)
		if status != http.StatusOK || strings.Contains(page, "<script>") ||
			!strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(page, "&lt;0.90.0&gt;") {
			t.Errorf("%d:\n%s", status, page)
		}
	})
	t.Run("exited", func(t *testing.T) {
		h := serve(topNode("worker", true), withProcesses())
		if _, page := getTop(t, h, "", false); !strings.Contains(page, "exited before it could be described") {
			t.Errorf("the page does not say the process exited:\n%s", page)
		}
		var snap TopSnapshot
		_, body := getTop(t, h, "", true)
		if err := json.Unmarshal([]byte(body), &snap); err != nil || len(snap.Memory) != 1 {
			t.Fatalf("%v: %s", err, body)
		}
		want := TopProcess{Rank: 1, Value: 5000, Pid: "<0.90.0>", Name: "exited", Exited: true, Time: snap.Time}
		if snap.Memory[0] != want {
			t.Errorf("exited row %+v, want %+v", snap.Memory[0], want)
		}
	})
	t.Run("no ranking is [] in JSON", func(t *testing.T) {
		none := etf.List{}
		_, body := getTop(t, serve(connectedNode(topReply(none, none, none, none, 500000)), withProcesses()), "", true)
		if !strings.Contains(body, `"memory":[],"message_queue_length":[],"reductions_per_second":[]`) {
			t.Errorf("empty rankings: %s", body)
		}
	})
	t.Run("node too slow", func(t *testing.T) {
		h := TopHandler(newTestExporter(stalledNode{topNode("w", false)}, time.Minute, withProcesses()), "app@host", 50*time.Millisecond, logger)
		if status, body := getTop(t, h, "", true); status != http.StatusGatewayTimeout {
			t.Errorf("%d %q, want 504", status, body)
		}
	})
	for _, c := range []struct {
		name       string
		node       *fakeTarget
		collectors map[string]Collector
		query      string
		status     int
		says       string
	}{
		{"another target", topNode("w", false), withProcesses(), "?target=other@host", http.StatusBadRequest, "watches app@host only"},
		{"processes disabled", topNode("w", false), map[string]Collector{}, "", http.StatusNotFound, "--no-collector.processes"},
		{"node down", &fakeTarget{}, withProcesses(), "", http.StatusBadGateway, "connecting to the node"},
		{"broken reply", connectedNode(detailsAs(etf.Atom("undefined"))), withProcesses(), "", http.StatusBadGateway, "details"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := getTop(t, serve(c.node, c.collectors), c.query, true)
			if status != c.status || !strings.Contains(body, c.says) {
				t.Errorf("%d %q, want %d and %q", status, body, c.status, c.says)
			}
		})
	}
}
