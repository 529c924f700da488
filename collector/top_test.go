package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

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
			%% Messages from the filler and reads from us are signals from
			%% different senders, which the hog may take in any order: wait
			%% until it holds them all and sleeps, so that the probe and
			%% the reads below see the same process.
			Settled = fun Wait() ->
				case process_info(P, [message_queue_len, status]) of
					[{message_queue_len, `+strconv.Itoa(queued)+`}, {status, waiting}] -> ok;
					_ -> timer:sleep(10), Wait()
				end
			end,
			Settled(),
			erlang:garbage_collect(), ok.`)

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		snap, err := l.exporter.TopProcesses(ctx)
		if err != nil {
			t.Fatalf("TopProcesses: %v", err)
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
		if snap.Processes < 10 || snap.WindowSeconds <= 0 {
			t.Errorf("snapshot header: %d processes, window %gs", snap.Processes, snap.WindowSeconds)
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
	return connectedNode(topReply(top("<0.90.0>", 5000), top("<0.90.0>", 7), busy("<0.90.0>", 200, 500000), details, 500000))
}

// connectedNode is a connected node that answers top_processes with reply.
func connectedNode(reply etf.Term) *fakeTarget {
	n := &fakeTarget{fakeNode: fakeNode{replies: map[string]etf.Term{
		"erlang:system_info(process_count)": 47,
		"probe:top_processes(10,20,0,1,0)":  reply,
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

func TestTopProcesses(t *testing.T) {
	rank := func(n *fakeTarget, collectors map[string]Collector, timeout time.Duration) (TopSnapshot, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return newTestExporter(n, time.Minute, collectors).TopProcesses(ctx)
	}
	withProcesses := func() map[string]Collector { return map[string]Collector{"processes": &processesCollector{}} }

	t.Run("ranking", func(t *testing.T) {
		node := connectedNode(topReply(top("<0.90.0>", 5000), top("<0.91.0>", 7), busy("<0.92.0>", 200, 500000),
			described("<0.90.0>", "big", "<0.91.0>", "queued", "<0.92.0>", "busy"), 500000))
		snap, err := rank(node, withProcesses(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		want := TopProcess{Rank: 1, Value: 200, Pid: "<0.92.0>", Name: "busy", RegisteredName: "busy",
			CurrentFunction: "gen_server:loop/7", InitialCall: "proc_lib:init_p/5",
			MemoryBytes: 2000, MessageQueueLength: 3, Reductions: 4000, Time: snap.Time, WindowSeconds: 0.5}
		if got := snap.Reductions; len(got) != 1 || got[0] != want {
			t.Errorf("reductions ranking %+v, want [%+v]", got, want)
		}
		if snap.Processes != 47 || snap.WindowSeconds != 0.5 || snap.MemorySlices != 1 ||
			len(snap.Memory) != 1 || snap.Memory[0].Value != 5000 || snap.Memory[0].Name != "big" ||
			len(snap.MessageQueue) != 1 || snap.MessageQueue[0].Value != 7 || snap.MessageQueue[0].Name != "queued" {
			t.Errorf("snapshot %+v", snap)
		}
	})
	t.Run("exited", func(t *testing.T) {
		snap, err := rank(topNode("worker", true), withProcesses(), time.Second)
		if err != nil || len(snap.Memory) != 1 {
			t.Fatalf("%v: %+v", err, snap)
		}
		want := TopProcess{Rank: 1, Value: 5000, Pid: "<0.90.0>", Name: "exited", Exited: true, Time: snap.Time}
		if snap.Memory[0] != want {
			t.Errorf("exited row %+v, want %+v", snap.Memory[0], want)
		}
	})
	t.Run("no ranking is [] in JSON", func(t *testing.T) {
		none := etf.List{}
		snap, err := rank(connectedNode(topReply(none, none, none, none, 500000)), withProcesses(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(snap)
		if !strings.Contains(string(body), `"memory":[],"message_queue_length":[],"reductions_per_second":[]`) {
			t.Errorf("empty rankings: %s", body)
		}
	})
	t.Run("node too slow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := newTestExporter(stalledNode{topNode("w", false)}, time.Minute, withProcesses()).TopProcesses(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v, want the deadline exceeded", err)
		}
	})
	for _, c := range []struct {
		name       string
		node       *fakeTarget
		collectors map[string]Collector
		says       string
	}{
		{"processes disabled", topNode("w", false), map[string]Collector{}, "--no-collector.processes"},
		{"node down", &fakeTarget{}, withProcesses(), "connecting to the node"},
		{"broken reply", connectedNode(detailsAs(etf.Atom("undefined"))), withProcesses(), "details"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := rank(c.node, c.collectors, time.Second); err == nil || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%v, want an error saying %q", err, c.says)
			}
		})
	}
	if _, err := rank(topNode("w", false), map[string]Collector{}, time.Second); !errors.Is(err, ErrProcessesDisabled) {
		t.Errorf("without the processes collector: %v, want ErrProcessesDisabled", err)
	}
}

// A caller on its own clock gets a ranking no older than it asks for, and
// that ranking is the one scrapes and /top are then served: one scan.
func TestTopProcessesWithin(t *testing.T) {
	node := topNode("worker", false)
	e := newTestExporter(node, time.Minute, map[string]Collector{"processes": &processesCollector{}})
	scans := func() int {
		n := 0
		for _, c := range node.calls {
			if strings.HasPrefix(c, "probe:top_processes(") {
				n++
			}
		}
		return n
	}
	ctx := context.Background()
	first, err := e.TopProcessesWithin(ctx, time.Hour)
	if err != nil || scans() != 1 {
		t.Fatalf("first ranking: %v, %d scans", err, scans())
	}
	if again, err := e.TopProcessesWithin(ctx, time.Hour); err != nil || scans() != 1 || !again.Time.Equal(first.Time) {
		t.Errorf("a ranking younger than asked for was not served from cache: %v, %d scans", err, scans())
	}
	fresh, err := e.TopProcessesWithin(ctx, 0)
	if err != nil || scans() != 2 || !fresh.Time.After(first.Time) {
		t.Fatalf("a ranking older than asked for was not taken anew: %v, %d scans", err, scans())
	}
	testutil.CollectAndCount(e.Scrape(ctx))
	served, err := e.TopProcesses(ctx)
	if err != nil || scans() != 2 || !served.Time.Equal(fresh.Time) {
		t.Errorf("the scrape and /top did not share the fresh ranking: %v, %d scans, %s vs %s", err, scans(), served.Time, fresh.Time)
	}
}
