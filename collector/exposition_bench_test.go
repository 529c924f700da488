// Benchmarks of the exposition path: a scrape served from cache, and one
// that refreshes (decodes and builds) everything, gathered and encoded in
// the text format as the /metrics handler does.

package collector

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// scrapeTarget answers the probe-backed collectors of a default scrape
// with full top-10 rankings and a 64-scheduler msacc reply.
func scrapeTarget() *fakeTarget {
	tables := etf.List{}
	for i := range 10 {
		tables = append(tables, etf.Tuple{[]byte(fmt.Sprintf("table_%d", i)), 100000 - i, 1000 + i})
	}
	t := &fakeTarget{fakeNode: fakeNode{replies: map[string]etf.Term{
		"erlang:system_info(process_count)":               10000,
		"probe:top_processes(10,20,0,1,0)":                rankedReply(10),
		"probe:ets_tables(10)":                            etf.Tuple{etf.Atom("ok"), tables},
		"erlang:memory()":                                 memoryReply,
		"erlang:statistics(microstate_accounting)":        msaccReply(64),
		"erlang:convert_time_unit(1,second,perf_counter)": 1000000000,
	}}}
	t.up.Store(true)
	return t
}

func benchmarkScrape(b *testing.B, ttl time.Duration) {
	e := newTestExporter(scrapeTarget(), ttl, map[string]Collector{
		"processes": &processesCollector{}, "ets": etsCollector{}, "memory": memoryCollector{}, "msacc": msaccCollector{},
	})
	serve := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reg := prometheus.NewRegistry()
		reg.MustRegister(e.Scrape(ctx))
		families, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range families {
			if err := enc.Encode(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	serve() // fills the cache
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

func BenchmarkScrapeCached(b *testing.B)     { benchmarkScrape(b, time.Hour) }
func BenchmarkScrapeRefreshing(b *testing.B) { benchmarkScrape(b, time.Nanosecond) }
