// The benchmark's flags, handed to bench.Run, and its report, printed.

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/beam-exporter/beam_exporter/cmd/beam_bench/internal/bench"
	"github.com/beam-exporter/beam_exporter/collector"
)

func main() {
	// The collector flags (--collector.*) are registered too: the benchmark
	// measures the exporter as those flags configure it, the defaults unless
	// told otherwise.
	sizes := kingpin.Flag("bench.sizes", "Comma-separated process counts, one node each.").Default("1000,10000,100000,1000000").String()
	tables := kingpin.Flag("bench.tables", "ETS tables on each node.").Default("5000").Int()
	topN := kingpin.Flag("bench.top-n", "N of the baseline's rankings.").Default("10").Int()
	runs := kingpin.Flag("bench.runs", "Runs of each refresh at 10k processes or fewer (fewer on larger nodes).").Default("20").Int()
	msaccRuns := kingpin.Flag("bench.msacc-runs", "Alternating runs each way of the microstate accounting workload.").Default("10").Int()
	msaccWindow := kingpin.Flag("bench.msacc-window", "Length of one microstate accounting run.").Default("3s").Duration()
	exporter := kingpin.Flag("bench.exporter", "The beam_exporter binary to measure.").Default("./beam_exporter").String()
	out := kingpin.Flag("bench.out", "Also write the report to this file.").String()
	kingpin.Parse()
	if err := collector.ValidateFlags(); err != nil {
		kingpin.Fatalf("%v", err)
	}
	cfg := bench.Config{Tables: *tables, TopN: *topN, Exporter: *exporter, Runs: *runs,
		MsaccRuns: *msaccRuns, MsaccWindow: *msaccWindow, Progress: os.Stderr}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			kingpin.Fatalf("--bench.sizes: %q is not a process count", s)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	if _, err := os.Stat(cfg.Exporter); err != nil {
		kingpin.Fatalf("%v (run `make build` first)", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	r, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	r.Write(os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		r.Write(f)
		f.Close()
	}
	fmt.Fprintf(os.Stderr, "done in %s\n", time.Since(start).Round(time.Second))
}
