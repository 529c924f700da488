package otel

import (
	"os"
	"strings"
	"testing"
	"time"
)

// testdata/otelcol-output.jsonl is the file exporter's output of a real run
// (otelcol-beam 0.161.0, the sidecar job), cut down to a few metrics: a
// scrape with the node up, the first scrape after it was killed, and the
// start of a line the exporter had not finished writing.
func TestParsePoints(t *testing.T) {
	data, err := os.ReadFile("testdata/otelcol-output.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	points, err := ParsePoints(data)
	if err != nil {
		t.Fatal(err)
	}
	up := time.Unix(0, 1796136013535000000)
	down := time.Unix(0, 1796136043535000000)
	type key struct {
		metric, label string
		time          time.Time
	}
	got := map[key]Point{}
	for _, p := range points {
		if p.Job() != "beam" || p.Instance() != "127.0.0.1:19882" {
			t.Errorf("%s: resource %v, want job beam and instance 127.0.0.1:19882", p.Metric, p.Resource)
		}
		label := ""
		for _, v := range p.Labels {
			label = v
		}
		got[key{p.Metric, label, p.Time}] = p
	}
	for _, tc := range []struct {
		key
		want Point
	}{
		{key{"beam_up", "", up}, Point{Type: "gauge", Value: 1}},
		{key{"beam_memory_bytes", "binary", up}, Point{Type: "gauge", Value: 677000}},
		{key{"beam_reductions_total", "", up}, Point{Type: "sum", Monotonic: true, Cumulative: true, Start: up, Value: 160271}},
		{key{"go_gc_duration_seconds", "", up}, Point{Type: "summary", Start: up}},
		{key{"beam_up", "", down}, Point{Type: "gauge", Value: 0}},
		{key{"beam_reductions_total", "", down}, Point{Type: "sum", Monotonic: true, Cumulative: true, Start: up, NoValue: true}},
		{key{"beam_connection_errors_total", "unknown_node", down}, Point{Type: "sum", Monotonic: true, Cumulative: true, Start: up, Value: 2}},
	} {
		p, ok := got[tc.key]
		if !ok {
			t.Errorf("%+v: missing", tc.key)
			continue
		}
		if p.Type != tc.want.Type || p.Monotonic != tc.want.Monotonic || p.Cumulative != tc.want.Cumulative ||
			!p.Start.Equal(tc.want.Start) || p.Value != tc.want.Value || p.NoValue != tc.want.NoValue {
			t.Errorf("%+v: got %+v, want %+v", tc.key, p, tc.want)
		}
	}
	if n := len(points); n != 1+2+1+1+1+1+8 {
		t.Errorf("%d points, want 15 (the unfinished last line left out)", n)
	}
}

func TestParsePointsErrors(t *testing.T) {
	for _, line := range []string{
		`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x"}]}]}]}`,
		`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"timeUnixNano":"1"}]}}]}]}]}`,
		`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"timeUnixNano":"x","asDouble":1}]}}]}]}]}`,
		`{"resourceMetrics":`,
	} {
		if _, err := ParsePoints([]byte(line + "\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%s: err %v, want one naming line 1", line, err)
		}
	}
}
