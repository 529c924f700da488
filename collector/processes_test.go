package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ergo-services/ergo/etf"
)

// top builds a ranking from pid, value pairs.
func top(kv ...any) etf.List {
	l := etf.List{}
	for i := 0; i < len(kv); i += 2 {
		l = append(l, etf.Tuple{[]byte(kv[i].(string)), kv[i+1]})
	}
	return l
}

// described builds the details of processes, each given as pid and name.
func described(kv ...string) etf.List {
	l := etf.List{}
	for i := 0; i < len(kv); i += 2 {
		l = append(l, detail(kv[i], kv[i+1]))
	}
	return l
}

func detail(pid, name string) etf.Map {
	return etf.Map{
		etf.Atom("pid"): []byte(pid), etf.Atom("name"): []byte(name),
		etf.Atom("registered_name"): []byte(name), etf.Atom("current_function"): []byte("gen_server:loop/7"),
		etf.Atom("initial_call"): []byte("proc_lib:init_p/5"), etf.Atom("memory"): 2000,
		etf.Atom("message_queue_len"): 3, etf.Atom("reductions"): 4000,
	}
}

func topReply(memory, mql, reds, details etf.List, windowUS int) etf.Term {
	return etf.Tuple{etf.Atom("ok"), etf.Map{
		etf.Atom("memory"):            memory,
		etf.Atom("message_queue_len"): mql,
		etf.Atom("reductions"):        reds,
		etf.Atom("details"):           details,
		etf.Atom("window_us"):         windowUS,
		etf.Atom("processes"):         47,
	}}
}

func TestProcesses(t *testing.T) {
	reply := topReply(
		top("<0.50.0>", 155528, "<0.44.0>", 42432),
		top("<0.90.0>", 25000),
		top("<0.60.0>", 289, "<0.91.0>", 3),
		described("<0.50.0>", "code_server", "<0.44.0>", "application_controller", "<0.90.0>", "mailbox_holder", "<0.60.0>", "rex"),
		500000)
	expectMetrics(t, &processesCollector{}, map[string]etf.Term{
		"erlang:system_info(process_count)": 47,
		"probe:top_processes(10,20,0,1)":    reply,
	}, `
# HELP beam_process_memory_bytes Memory of the process at this rank among the largest by memory. process is its registered name, proc_lib label or initial call, never a pid. Up to one slow tier old; on a node of more than 100,000 processes each refresh reads a slice of them, so up to one slow tier per 100,000 processes old.
# TYPE beam_process_memory_bytes gauge
beam_process_memory_bytes{process="application_controller",rank="2"} 42432
beam_process_memory_bytes{process="code_server",rank="1"} 155528
# HELP beam_process_message_queue_length Message queue length of the process at this rank among the longest mailboxes. Up to one slow tier old.
# TYPE beam_process_message_queue_length gauge
beam_process_message_queue_length{process="mailbox_holder",rank="1"} 25000
# HELP beam_process_reductions_per_second Reductions per second of the process at this rank among the busiest, measured between two reads at least --collector.processes.window apart. Up to one slow tier old.
# TYPE beam_process_reductions_per_second gauge
beam_process_reductions_per_second{process="rex",rank="1"} 578
beam_process_reductions_per_second{process="exited",rank="2"} 6
`)
}

// detailsAs is an empty ranking whose details are t.
func detailsAs(t etf.Term) etf.Term {
	reply := topReply(etf.List{}, etf.List{}, etf.List{}, etf.List{}, 1)
	reply.(etf.Tuple)[1].(etf.Map)[etf.Atom("details")] = t
	return reply
}

func TestProcessesMalformed(t *testing.T) {
	tooMany := etf.List{}
	for range 11 {
		tooMany = append(tooMany, etf.Tuple{[]byte("<0.1.0>"), 1})
	}
	tooManyDetails := etf.List{}
	for i := range 31 {
		tooManyDetails = append(tooManyDetails, detail(fmt.Sprintf("<0.%d.0>", i), "p"))
	}
	noName := detail("<0.1.0>", "p")
	delete(noName, etf.Atom("name"))
	hugeMemory := detail("<0.1.0>", "p")
	hugeMemory[etf.Atom("memory")] = -5
	none := etf.List{}
	for name, reply := range map[string]etf.Term{
		"refused":             etf.Tuple{etf.Atom("error"), etf.Atom("badarg")},
		"not a map":           etf.Tuple{etf.Atom("ok"), etf.List{}},
		"missing key":         etf.Tuple{etf.Atom("ok"), etf.Map{etf.Atom("memory"): etf.List{}}},
		"more than top-n":     topReply(tooMany, none, none, none, 1),
		"pid term for pid":    topReply(etf.List{etf.Tuple{etf.Pid{}, 1}}, none, none, none, 1),
		"name for pid":        topReply(top("code_server", 1), none, none, none, 1),
		"remote pid":          topReply(top("<5.1.0>x", 1), none, none, none, 1),
		"negative value":      topReply(top("<0.1.0>", -1), none, none, none, 1),
		"window overflows":    topReply(none, none, top("<0.1.0>", 5), none, 1<<60+1),
		"details not a list":  detailsAs(etf.Atom("undefined")),
		"too many details":    topReply(none, none, none, tooManyDetails, 1),
		"described twice":     topReply(none, none, none, described("<0.1.0>", "a", "<0.1.0>", "b"), 1),
		"detail without name": topReply(none, none, none, etf.List{noName}, 1),
		"negative detail":     topReply(none, none, none, etf.List{hugeMemory}, 1),
		"detail not a map":    topReply(none, none, none, etf.List{etf.Tuple{[]byte("<0.1.0>")}}, 1),
	} {
		t.Run(name, func(t *testing.T) {
			expectError(t, &processesCollector{}, map[string]etf.Term{
				"erlang:system_info(process_count)": 47,
				"probe:top_processes(10,20,0,1)":    reply,
			})
		})
	}
}

// A node of 250,000 processes has memory ranked over three refreshes, one
// slice each; every refresh merges the slices seen so far.
func TestProcessesMemorySlices(t *testing.T) {
	none := etf.List{}
	node := &fakeNode{replies: map[string]etf.Term{
		"erlang:system_info(process_count)": 250000,
		"probe:top_processes(2,20,0,3)":     topReply(top("<0.1.0>", 300, "<0.2.0>", 100), none, none, described("<0.1.0>", "a", "<0.2.0>", "b"), 500000),
		"probe:top_processes(2,20,1,3)":     topReply(top("<0.3.0>", 200), none, none, described("<0.3.0>", "c"), 500000),
		"probe:top_processes(2,20,2,3)":     topReply(top("<0.4.0>", 400, "<0.5.0>", 50), none, none, described("<0.4.0>", "d", "<0.5.0>", "e"), 500000),
	}}
	defer func(n int) { *processesTopN = n }(*processesTopN)
	*processesTopN = 2
	c := &processesCollector{}
	want := []string{"a=300 b=100", "a=300 c=200", "d=400 a=300", "d=400 a=300"}
	for i, w := range want {
		ch := make(chan prometheus.Metric, 100)
		if err := c.Update(context.Background(), node, ch); err != nil {
			t.Fatal(err)
		}
		close(ch)
		var got []string
		for m := range ch {
			if !strings.Contains(m.Desc().String(), "beam_process_memory_bytes") {
				continue
			}
			var d dto.Metric
			m.Write(&d)
			got = append(got, fmt.Sprintf("%s=%g", d.Label[0].GetValue(), d.GetGauge().GetValue()))
		}
		if strings.Join(got, " ") != w {
			t.Errorf("refresh %d: memory ranking %q, want %q", i+1, strings.Join(got, " "), w)
		}
		// /top shows the same merged ranking, each process as described by
		// the refresh that ranked it.
		snap, ok := c.latestRanking(node.Generation())
		if !ok {
			t.Fatalf("refresh %d: no snapshot", i+1)
		}
		got = got[:0]
		for r, p := range snap.Memory {
			if p.Rank != r+1 || p.RegisteredName != p.Name || p.Pid == "" {
				t.Errorf("refresh %d: snapshot row %+v", i+1, p)
			}
			got = append(got, fmt.Sprintf("%s=%g", p.Name, p.Value))
		}
		if strings.Join(got, " ") != w || snap.MemorySlices != 3 {
			t.Errorf("refresh %d: /top memory ranking %q over %d slices, want %q over 3", i+1, strings.Join(got, " "), snap.MemorySlices, w)
		}
	}
}
