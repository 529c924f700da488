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

func top(kv ...any) etf.List {
	l := etf.List{}
	for i := 0; i < len(kv); i += 2 {
		l = append(l, etf.Tuple{[]byte(kv[i].(string)), kv[i+1]})
	}
	return l
}

func topReply(memory, mql, reds etf.List, windowUS int) etf.Term {
	return etf.Tuple{etf.Atom("ok"), etf.Map{
		etf.Atom("memory"):            memory,
		etf.Atom("message_queue_len"): mql,
		etf.Atom("reductions"):        reds,
		etf.Atom("window_us"):         windowUS,
		etf.Atom("processes"):         47,
	}}
}

func TestProcesses(t *testing.T) {
	reply := topReply(
		top("code_server", 155528, "application_controller", 42432),
		top("mailbox_holder", 25000),
		top("rex", 289), 500000)
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
`)
}

func TestProcessesMalformed(t *testing.T) {
	tooMany := etf.List{}
	for range 11 {
		tooMany = append(tooMany, etf.Tuple{[]byte("p"), 1})
	}
	for name, reply := range map[string]etf.Term{
		"refused":          etf.Tuple{etf.Atom("error"), etf.Atom("badarg")},
		"not a map":        etf.Tuple{etf.Atom("ok"), etf.List{}},
		"missing key":      etf.Tuple{etf.Atom("ok"), etf.Map{etf.Atom("memory"): etf.List{}}},
		"more than top-n":  topReply(tooMany, etf.List{}, etf.List{}, 1),
		"pid as name":      topReply(etf.List{etf.Tuple{etf.Pid{}, 1}}, etf.List{}, etf.List{}, 1),
		"negative value":   topReply(top("p", -1), etf.List{}, etf.List{}, 1),
		"window overflows": topReply(etf.List{}, etf.List{}, top("p", 5), 1<<60+1),
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
	node := &fakeNode{replies: map[string]etf.Term{
		"erlang:system_info(process_count)": 250000,
		"probe:top_processes(2,20,0,3)":     topReply(top("a", 300, "b", 100), top(), top(), 500000),
		"probe:top_processes(2,20,1,3)":     topReply(top("c", 200), top(), top(), 500000),
		"probe:top_processes(2,20,2,3)":     topReply(top("d", 400, "e", 50), top(), top(), 500000),
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
	}
}
