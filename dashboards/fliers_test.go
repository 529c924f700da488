// Frequent fliers: the same synthetic rankings scraped every 5 s and every 15 s give the same table.
package dashboards

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/beam-exporter/beam_exporter/alerts"
)

// flierRanking is the synthetic top-N by memory of two nodes: the exporter's
// slow tier refreshes it every 30 s, so ranking k holds from 30k s to
// 30(k+1) s, whatever the scrape interval. It returns process -> memory of
// each place the name holds (a pool holds two).
func flierRanking(node string, k int) map[string][]float64 {
	r := map[string][]float64{"cache": {5e6 + 1000*float64(k)}}
	switch node {
	case "node-a":
		if k%3 != 0 {
			r["worker"] = []float64{2e6}
		}
		if k >= 60 {
			r["pool"] = []float64{1e6, 1e6}
		}
	case "node-b":
		if k < 40 {
			r["batch"] = []float64{3e6}
		}
	}
	return r
}

var flierNodes = []string{"node-a", "node-b"}

const flierSeconds = 3600 // one hour of rankings

// flierSeries writes the rankings as scraped every interval seconds, in
// promtool's input_series notation: a series is present while its name holds
// that place, and gets a staleness marker on the first scrape without it, as
// Prometheus does.
func flierSeries(interval int) []any {
	type key struct{ node, process string }
	places := map[key]int{}
	for _, n := range flierNodes {
		for k := 0; k <= flierSeconds/30; k++ {
			for p, mems := range flierRanking(n, k) {
				places[key{n, p}] = max(places[key{n, p}], len(mems))
			}
		}
	}
	var out []any
	for _, n := range flierNodes {
		base := fmt.Sprintf(`job="beam",app="shop",instance=%q`, n+":9882")
		var up []string
		for ts := 0; ts <= flierSeconds; ts += interval {
			up = append(up, "1")
		}
		out = append(out, map[string]any{"series": `beam_scrape_collector_success{` + base + `,collector="processes"}`, "values": strings.Join(up, " ")})
		for _, p := range []string{"cache", "worker", "pool", "batch"} {
			for place := 0; place < places[key{n, p}]; place++ {
				var vals []string
				present := false
				for ts := 0; ts <= flierSeconds; ts += interval {
					mems := flierRanking(n, ts/30)[p]
					switch {
					case place < len(mems):
						vals = append(vals, strconv.FormatFloat(mems[place], 'f', -1, 64))
						present = true
					case present:
						vals = append(vals, "stale")
						present = false
					default:
						vals = append(vals, "_")
					}
				}
				// Ranks are the places in order, cache first; the panel
				// aggregates them away.
				rank := 2 + place
				if p == "cache" {
					rank = 1
				}
				out = append(out, map[string]any{
					"series": fmt.Sprintf(`beam_process_memory_bytes{%s,rank="%d",process=%q}`, base, rank, p),
					"values": strings.Join(vals, " "),
				})
			}
		}
	}
	return out
}

// flierExpected is the table computed from the rankings themselves: the
// recording rules sample the latest ranking at each evaluation (every
// `every` seconds), and the panel reads the evaluations inside its range,
// which ends at `at` and is `rangeS` long.
func flierExpected(every, at, rangeS int) (share, avg, peak, nodes map[string]float64) {
	share, avg, peak, nodes = map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	places, sum := map[string]float64{}, map[string]float64{}
	seen := map[string]map[string]bool{}
	rankings := 0.0
	for t := at - rangeS + 1; t <= at; t++ {
		if t%every != 0 {
			continue
		}
		for _, n := range flierNodes {
			rankings++
			for p, mems := range flierRanking(n, t/30) {
				for _, m := range mems {
					places[p]++
					sum[p] += m
				}
				if seen[p] == nil {
					seen[p] = map[string]bool{}
				}
				seen[p][n] = true
			}
		}
	}
	for p := range places {
		share[p] = places[p] / rankings
		avg[p] = sum[p] / places[p]
		nodes[p] = float64(len(seen[p]))
	}
	// Peaks come from every scrape: the largest value any ranking of the
	// range held (cache grows with k, so its last ranking).
	for k := 0; k <= at/30; k++ {
		for _, n := range flierNodes {
			for p, mems := range flierRanking(n, k) {
				for _, m := range mems {
					peak[p] = max(peak[p], m)
				}
			}
		}
	}
	return
}

// TestFrequentFliersScrapeInterval runs the frequent-fliers panel's queries,
// exactly as shipped, with the shipped recording rules on the same rankings
// scraped every 5 s and every 15 s, and expects the same table from both: the
// share of rankings does not depend on the scrape interval. It also shows
// that the old figure, a count of samples, does (three times as many at 5 s).
func TestFrequentFliersScrapeInterval(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	th, err := alerts.DefaultThresholds()
	if err != nil {
		t.Fatal(err)
	}
	every := int(th.ProcessRankings.Interval.Seconds())
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, d := range all {
		for _, p := range d.Panels {
			if strings.HasPrefix(p.Title, "Frequent fliers") {
				exprs = p.Exprs
			}
		}
	}
	if len(exprs) != 4 {
		t.Fatalf("frequent fliers panel: %d queries, want 4 (share, average, peak, nodes)", len(exprs))
	}
	// A range that ends on an evaluation and starts between two, so that the
	// same evaluations fall inside it whether ranges are closed (Prometheus 2)
	// or open at the start (Prometheus 3).
	at, rangeS := flierSeconds, flierSeconds-every/2
	vars := map[string]string{"app": ".*", "job": ".+", "instance": ".+",
		"__range": fmt.Sprintf("%ds", rangeS), "__interval": th.ProcessRankings.Interval.Text}
	share, avg, peak, nodes := flierExpected(every, at, rangeS)
	if share["cache"] != 1 || share["worker"] <= 0 || share["worker"] >= share["pool"] || nodes["cache"] != 2 {
		t.Fatalf("synthetic rankings do not exercise the table: share %v, nodes %v", share, nodes)
	}
	samples := func(m map[string]float64) []any {
		var out []any
		for _, p := range []string{"batch", "cache", "pool", "worker"} {
			out = append(out, map[string]any{"labels": fmt.Sprintf(`{process=%q}`, p), "value": m[p]})
		}
		return out
	}
	rules, err := filepath.Abs(filepath.Join("..", "alerts", alerts.RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	// The old query counted samples: over a range that starts between two
	// scrapes, worker's count is exactly three times higher at 5 s.
	rawCount := func(interval int) float64 {
		n := 0.0
		for ts := at - flierSeconds + 23; ts <= at; ts++ {
			if ts%interval == 0 && len(flierRanking("node-a", ts/30)["worker"]) > 0 {
				n++
			}
		}
		return n
	}
	if rawCount(5) != 3*rawCount(15) {
		t.Fatalf("raw counts %v and %v: want a factor of 3", rawCount(5), rawCount(15))
	}
	for _, interval := range []int{5, 15} {
		t.Run(fmt.Sprintf("scrape every %ds", interval), func(t *testing.T) {
			var tests []any
			for i, m := range []map[string]float64{share, avg, peak, nodes} {
				tests = append(tests, map[string]any{
					"expr":        Interpolate(exprs[i], vars),
					"eval_time":   fmt.Sprintf("%ds", at),
					"exp_samples": samples(m),
				})
			}
			tests = append(tests, map[string]any{
				"expr":        fmt.Sprintf(`sum by (process) (count_over_time(beam_process_memory_bytes{process="worker"}[%ds]))`, flierSeconds-23),
				"eval_time":   fmt.Sprintf("%ds", at),
				"exp_samples": []any{map[string]any{"labels": `{process="worker"}`, "value": rawCount(interval)}},
			})
			doc := map[string]any{
				"rule_files":          []string{rules},
				"evaluation_interval": th.ProcessRankings.Interval.Text,
				"tests": []any{map[string]any{
					"interval":         fmt.Sprintf("%ds", interval),
					"input_series":     flierSeries(interval),
					"promql_expr_test": tests,
				}},
			}
			out, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "fliers_test.yml")
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			if res, err := exec.Command(promtool, "test", "rules", path).CombinedOutput(); err != nil {
				t.Fatalf("promtool test rules: %v\n%s", err, res)
			}
			t.Logf("share of rankings: %v (raw count of worker's samples: %v)", share, rawCount(interval))
		})
	}
}
