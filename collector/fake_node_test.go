// A scripted node for decoder tests: replies captured from real nodes.

package collector

import (
	"os"

	"context"
	"fmt"
	"github.com/alecthomas/kingpin/v2"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeNode answers calls from a table keyed by "module:function(args)".
type fakeNode struct {
	replies map[string]etf.Term
	calls   []string
}

func callKey(module, function string, args []etf.Term) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = fmt.Sprint(a)
	}
	return module + ":" + function + "(" + strings.Join(parts, ",") + ")"
}

func (f *fakeNode) Call(_ context.Context, module, function string, args ...etf.Term) (etf.Term, error) {
	key := callKey(module, function, args)
	f.calls = append(f.calls, key)
	v, ok := f.replies[key]
	if !ok {
		return nil, fmt.Errorf("unexpected call %s", key)
	}
	return v, nil
}

func (f *fakeNode) ProbeCall(ctx context.Context, function string, args ...etf.Term) (etf.Term, error) {
	return f.Call(ctx, "probe", function, args...)
}

func (f *fakeNode) EnsureSession(context.Context) error { return nil }
func (f *fakeNode) Generation() uint64                  { return 1 }

// collectorAdapter exposes one Collector's Update as a prometheus.Collector.
type collectorAdapter struct {
	c    Collector
	node Node
	err  error
}

func (a *collectorAdapter) Describe(chan<- *prometheus.Desc) {}
func (a *collectorAdapter) Collect(ch chan<- prometheus.Metric) {
	a.err = a.c.Update(context.Background(), a.node, ch)
}

// expectMetrics runs c against replies and compares the exposition text.
func expectMetrics(t *testing.T, c Collector, replies map[string]etf.Term, want string, names ...string) {
	t.Helper()
	a := &collectorAdapter{c: c, node: &fakeNode{replies: replies}}
	if err := testutil.CollectAndCompare(a, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if a.err != nil {
		t.Fatalf("Update: %v", a.err)
	}
}

// expectError runs c against replies and wants an error, and no panic.
func expectError(t *testing.T, c Collector, replies map[string]etf.Term) {
	t.Helper()
	a := &collectorAdapter{c: c, node: &fakeNode{replies: replies}}
	testutil.CollectAndCount(a)
	if a.err == nil {
		t.Fatal("Update succeeded on a malformed reply")
	}
}

func props(kv ...any) etf.List {
	l := etf.List{}
	for i := 0; i < len(kv); i += 2 {
		l = append(l, etf.Tuple{etf.Atom(kv[i].(string)), kv[i+1]})
	}
	return l
}

func TestMain(m *testing.M) {
	// The collectors' flags take their defaults when kingpin parses.
	if _, err := kingpin.CommandLine.Parse(nil); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// compareAdapter compares what a collects with the exposition text want.
func compareAdapter(t *testing.T, a *collectorAdapter, want string, names ...string) {
	t.Helper()
	if err := testutil.CollectAndCompare(a, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if a.err != nil {
		t.Fatalf("Update: %v", a.err)
	}
}

// collectAll runs a's collector once and returns what it sent.
func collectAll(a *collectorAdapter) []prometheus.Metric {
	ch := make(chan prometheus.Metric)
	var out []prometheus.Metric
	done := make(chan struct{})
	go func() {
		for m := range ch {
			out = append(out, m)
		}
		close(done)
	}()
	a.Collect(ch)
	close(ch)
	<-done
	return out
}
