//go:build e2eotel

// `make e2e-otel`: a real OpenTelemetry Collector runs otelcol.yaml against
// beam_exporter in both shapes, watching a real node, and this test reads
// back what the Collector would have sent to Honeycomb.

package otel

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

const (
	apiKey = "e2e-otel-api-key" // HONEYCOMB_API_KEY for the Collector
	// The first scrapes of each job, with the node up, that the checks of
	// families, types and values read.
	upScrapes = 4
	// Our own scrapes, to compare the Collector's values with: the exporter
	// serves each tier from its cache for 14 s or 29 s (its default tiers
	// less their margin), so a scrape of ours
	// within a few seconds of the Collector's sees the same refresh as the
	// Collector or the one just before or after it.
	ownScrapeEvery = time.Second
	sameMoment     = 3 * time.Second
	// Memory moves between two refreshes; counts must agree exactly.
	memoryTolerance = 0.02
	waitLimit       = 3 * time.Minute
)

func TestCollectorEndToEnd(t *testing.T) {
	exporterBin, collectorBin := binaryFromEnv(t, "BEAM_EXPORTER_BIN"), binaryFromEnv(t, "OTELCOL_BIN")
	dir := t.TempDir()

	node := erltest.Start(t, erltest.Options{Name: erltest.UniqueName("otel_e2e")})
	host := strings.SplitN(node.Name, "@", 2)[1]
	cookie := testkit.WriteFile(t, dir, "cookie", node.Cookie+"\n", 0o600)
	fleetConfig := testkit.WriteFile(t, dir, "beam_exporter.yml", fmt.Sprintf(
		"auth_modules:\n  %s:\n    cookie_file: %s\n    targets: ['%s']\n", ExampleAuthModule, cookie, node.Name), 0o600)
	// Two exporters, each with its own connection: the sidecar's under a
	// name of its own, the fleet's as beam_exporter@<host>. Both with the
	// default tiers.
	sidecar := startExporter(t, exporterBin, "--erlang.node="+node.Name, "--erlang.cookie-file="+cookie,
		"--collector.msacc", "--erlang.local-name="+erltest.UniqueName("otel_sidecar")+"@"+host)
	fleet := startExporter(t, exporterBin, "--config.file="+fleetConfig)
	honeycomb := newOTLPSink(t)

	config, err := Render(Deployment{Sidecar: sidecar, Fleet: fleet, Node: node.Name, Honeycomb: honeycomb.URL})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "metrics.jsonl")
	// The file exporter beside Honeycomb's. The Collector merges the two
	// files; a list (the pipeline's exporters) is replaced whole.
	overlay := fmt.Sprintf(`exporters:
  file:
    path: %s
service:
  pipelines:
    metrics:
      exporters: [otlp_http/honeycomb, file]
`, out)
	start(t, "the Collector", []string{"HONEYCOMB_API_KEY=" + apiKey}, collectorBin,
		"--config=file:"+testkit.WriteFile(t, dir, "otelcol.yaml", config, 0o644),
		"--config=file:"+testkit.WriteFile(t, dir, "file-exporter.yaml", overlay, 0o644))

	ours := startScraping(t, map[string]string{
		SidecarJob: "http://" + sidecar + "/metrics",
		FleetJob:   "http://" + fleet + "/probe?target=" + node.Name + "&auth_module=" + ExampleAuthModule,
	})
	instances := map[string]string{SidecarJob: sidecar, FleetJob: node.Name}

	// The node up: families, types, start times and values.
	points := waitBeamUp(t, out, 1, time.Time{}, upScrapes)
	for _, job := range jobs {
		t.Run(job, func(t *testing.T) {
			times := upTimes(points, job, 1, time.Time{})[:upScrapes]
			mine, failed := ours.scrapes(job)
			t.Logf("%d scrapes of ours, %d failed", len(mine), failed)
			checkResource(t, points, job, instances[job])
			checkFamilies(t, points, mine, job, times)
			checkCounters(t, points, job, times)
			checkValues(t, points, mine, job, times)
		})
	}
	checkHoneycomb(t, honeycomb)

	// The node killed: beam_up 0 and nothing else about the node.
	killed := time.Now()
	node.Kill(t)
	points = waitBeamUp(t, out, 0, killed, 1)
	for _, job := range jobs {
		checkDown(t, points, job, killed, upTimes(points, job, 0, killed)[0])
	}

	// The node back under the same name: beam_up 1, and counters start again.
	restarted := time.Now()
	node.Restart(t)
	points = waitBeamUp(t, out, 1, restarted, 1)
	for _, job := range jobs {
		checkRestart(t, points, job, killed, upTimes(points, job, 1, restarted)[0])
	}
}

// checkResource: job and instance arrive as the resource's service.name and
// service.instance.id.
func checkResource(t *testing.T, points []Point, job, instance string) {
	for _, p := range jobPoints(points, job) {
		if p.Instance() != instance {
			t.Fatalf("%s: service.instance.id %q, want %q (resource %v)", p.Metric, p.Instance(), instance, p.Resource)
		}
	}
	t.Logf("resource attributes: %v", jobPoints(points, job)[0].Resource)
}

// checkFamilies: at each of the Collector's scrapes, every beam_ family
// that our scrapes within sameMoment all had arrived, under its own name
// and as the type its exposition gives, and nothing arrived that none of
// them had. (Some families come and go, such as a ranking that is empty
// when no process has a message queued.)
func checkFamilies(t *testing.T, points []Point, mine []scrape, job string, times []time.Time) {
	types := map[string]dto.MetricType{}
	for _, at := range times {
		got := map[string]Point{}
		for _, p := range jobPoints(points, job) {
			if p.Time.Equal(at) && !p.NoValue && strings.HasPrefix(p.Metric, "beam_") {
				got[p.Metric] = p
			}
		}
		inAll, inAny := map[string]int{}, map[string]bool{}
		near := 0
		for _, s := range mine {
			if d := s.start.Sub(at); d <= -sameMoment || d >= sameMoment {
				continue
			}
			near++
			for name, mf := range s.families {
				if strings.HasPrefix(name, "beam_") && len(mf.Metric) > 0 {
					inAll[name]++
					inAny[name] = true
					types[name] = mf.GetType()
				}
			}
		}
		if near == 0 {
			t.Fatalf("no scrape of ours within %v of the Collector's at %v", sameMoment, at)
		}
		for name, n := range inAll {
			if _, ok := got[name]; !ok && n == near {
				t.Errorf("family %s did not arrive in the Collector's scrape at %v", name, at)
			}
		}
		for name := range got {
			if !inAny[name] {
				t.Errorf("%s arrived at %v, but none of our scrapes around it has it", name, at)
			}
		}
		for name, p := range got {
			switch typ := types[name]; {
			case typ == dto.MetricType_COUNTER && !(p.Type == "sum" && p.Monotonic && p.Cumulative):
				t.Errorf("counter %s arrived as %s (monotonic %v, cumulative %v), want a monotonic cumulative sum", name, p.Type, p.Monotonic, p.Cumulative)
			case typ == dto.MetricType_GAUGE && p.Type != "gauge":
				t.Errorf("gauge %s arrived as %s", name, p.Type)
			case typ == dto.MetricType_HISTOGRAM && !(p.Type == "histogram" && p.Cumulative):
				t.Errorf("histogram %s arrived as %s (cumulative %v)", name, p.Type, p.Cumulative)
			case typ == dto.MetricType_SUMMARY && p.Type != "summary":
				t.Errorf("summary %s arrived as %s", name, p.Type)
			}
		}
	}
	if len(types) < 20 {
		t.Errorf("only %d beam_ families in our scrapes: %v", len(types), types)
	}
	t.Logf("%d beam_ families arrived, under their own names and types", len(types))
}

// checkCounters: each counter series has a start time, the same in every
// point, no later than the point, and its values never go down.
func checkCounters(t *testing.T, points []Point, job string, times []time.Time) {
	type state struct {
		start time.Time
		value float64
	}
	seen := map[string]state{}
	checked := 0
	for _, p := range jobPoints(points, job) {
		if p.Type != "sum" || p.NoValue || p.Time.After(times[len(times)-1]) {
			continue
		}
		key := p.Metric + labelsKey(p.Labels)
		switch prev, ok := seen[key]; {
		case p.Start.IsZero() || p.Start.After(p.Time):
			t.Errorf("%s: start time %v, point at %v", key, p.Start, p.Time)
		case ok && !p.Start.Equal(prev.start):
			t.Errorf("%s: start time moved from %v to %v while the node was up", key, prev.start, p.Start)
		case ok && p.Value < prev.value:
			t.Errorf("%s: went down from %v to %v", key, prev.value, p.Value)
		}
		seen[key] = state{p.Start, p.Value}
		checked++
	}
	if checked == 0 {
		t.Error("no counter points")
	}
	t.Logf("%d counter points of %d series: start times set and kept, values monotonic", checked, len(seen))
}

// checkValues: at each of the Collector's scrapes, each family carries the
// values of a scrape of ours taken within sameMoment of it: exactly, or for
// memory within memoryTolerance.
func checkValues(t *testing.T, points []Point, mine []scrape, job string, times []time.Time) {
	exact, within := 0, 0
	for _, at := range times {
		theirs := map[string]map[string]float64{}
		for _, p := range jobPoints(points, job) {
			if p.Time.Equal(at) && !p.NoValue && strings.HasPrefix(p.Metric, "beam_") {
				if theirs[p.Metric] == nil {
					theirs[p.Metric] = map[string]float64{}
				}
				theirs[p.Metric][labelsKey(p.Labels)] = p.Value
			}
		}
		for name, series := range theirs {
			var near []map[string]float64 // our scrapes of the family around at
			for _, s := range mine {
				if d := s.start.Sub(at); d > -sameMoment && d < sameMoment && s.families[name] != nil {
					near = append(near, seriesValues(s.families[name]))
				}
			}
			if len(near) == 0 {
				t.Errorf("%s at %v: none of our scrapes within %v has it", name, at, sameMoment)
				continue
			}
			tolerance := 0.0
			if strings.HasSuffix(name, "_bytes") {
				tolerance = memoryTolerance
			}
			closest, matched := "", false
			for _, ours := range near {
				if compareSeries(series, ours, 0) == "" {
					exact++
					matched = true
					break
				}
			}
			for _, ours := range near {
				if matched {
					break
				}
				if compareSeries(series, ours, tolerance) == "" {
					within++
					matched = true
					t.Logf("%s at %v: within %.0f%% of ours, not equal: %s", name, at.Format(time.TimeOnly), tolerance*100, compareSeries(series, ours, 0))
				} else if d := compareSeries(series, ours, tolerance); closest == "" || len(d) < len(closest) {
					closest = d
				}
			}
			if !matched {
				t.Errorf("%s at %v agrees with none of our %d scrapes within %v: %s", name, at, len(near), sameMoment, closest)
			}
		}
	}
	t.Logf("values at %d scrapes: %d families equal to a scrape of ours, %d within %.0f%% (memory)", len(times), exact, within, memoryTolerance*100)
}

// checkDown: in the first scrape after the kill with beam_up 0, the exporter
// itself was up, and no family about the node carries a value; the series
// that went away end with a point flagged "no recorded value".
func checkDown(t *testing.T, points []Point, job string, killed, at time.Time) {
	var valued, stale []string
	up := false
	for _, p := range jobPoints(points, job) {
		switch {
		case p.Metric == "up" && p.Time.Equal(at):
			up = p.Value == 1
		case !strings.HasPrefix(p.Metric, "beam_") || p.Metric == "beam_up" || aboutExporter(p.Metric):
		case p.NoValue && !p.Time.Before(killed) && !p.Time.After(at):
			stale = append(stale, p.Metric)
		case !p.NoValue && p.Time.Equal(at):
			valued = append(valued, p.Metric)
		}
	}
	if !up {
		t.Errorf("%s: up is not 1 at %v: the exporter itself should answer", job, at)
	}
	if len(valued) > 0 {
		t.Errorf("%s: with beam_up 0, these carry values: %v", job, dedupe(valued))
	}
	if !contains(stale, "beam_reductions_total") {
		t.Errorf("%s: beam_reductions_total has no stale point after the kill (stale: %v)", job, dedupe(stale))
	}
	t.Logf("%s: beam_up 0 at %v, %.1f s after the kill; %d stale points", job, at.Format(time.TimeOnly), at.Sub(killed).Seconds(), len(stale))
}

// aboutExporter tells the families that describe the exporter, not the
// node, and so go on while the node is down.
func aboutExporter(metric string) bool {
	return metric == "beam_connection_errors_total" || strings.HasPrefix(metric, "beam_exporter_")
}

// checkRestart: the counters of the restarted node get a new start time,
// after the kill, since their values went down.
func checkRestart(t *testing.T, points []Point, job string, killed, at time.Time) {
	for _, p := range jobPoints(points, job) {
		if p.Metric == "beam_reductions_total" && p.Time.Equal(at) {
			if p.NoValue || !p.Start.After(killed) || p.Start.After(p.Time) {
				t.Errorf("%s: beam_reductions_total after the restart: start %v, point at %v (killed at %v): want a new start time", job, p.Start, p.Time, killed)
			}
			t.Logf("%s: beam_up 1 again at %v; beam_reductions_total starts again at %v", job, at.Format(time.TimeOnly), p.Start.Format(time.TimeOnly))
			return
		}
	}
	t.Errorf("%s: no beam_reductions_total in the scrape at %v that has beam_up 1", job, at)
}

// checkHoneycomb: the OTLP/HTTP exporter posted to /v1/metrics with the
// API key and the dataset in its headers.
func checkHoneycomb(t *testing.T, sink *otlpSink) {
	reqs := sink.requests()
	if len(reqs) == 0 {
		t.Fatal("nothing reached the OTLP/HTTP endpoint")
	}
	for _, r := range reqs {
		if r.path != "/v1/metrics" || r.header.Get("X-Honeycomb-Team") != apiKey ||
			r.header.Get("X-Honeycomb-Dataset") != HoneycombDataset || r.header.Get("Content-Type") != "application/x-protobuf" || r.size == 0 {
			t.Errorf("request to %s (%d bytes) with headers %v", r.path, r.size, r.header)
		}
	}
	t.Logf("%d OTLP/HTTP requests to /v1/metrics, with x-honeycomb-team and x-honeycomb-dataset", len(reqs))
}

// jobs are the scrape jobs of otelcol.yaml, one per shape.
var jobs = []string{SidecarJob, FleetJob}

// waitBeamUp waits until every job has n scrapes after since whose beam_up
// is value, and returns the Collector's output.
func waitBeamUp(t *testing.T, out string, value float64, since time.Time, n int) []Point {
	t.Helper()
	return waitPoints(t, out, fmt.Sprintf("%d scrapes of each job with beam_up %v", n, value), func(ps []Point) bool {
		for _, job := range jobs {
			if len(upTimes(ps, job, value, since)) < n {
				return false
			}
		}
		return true
	})
}

// upTimes returns the times, after since, of the job's scrapes whose beam_up was value.
func upTimes(points []Point, job string, value float64, since time.Time) []time.Time {
	var out []time.Time
	for _, p := range jobPoints(points, job) {
		if p.Metric == "beam_up" && !p.NoValue && p.Value == value && p.Time.After(since) {
			out = append(out, p.Time)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

func jobPoints(points []Point, job string) []Point {
	var out []Point
	for _, p := range points {
		if p.Job() == job {
			out = append(out, p)
		}
	}
	return out
}

// compareSeries returns "" when ours and theirs hold the same series with
// values equal within tolerance (relative), else what differs.
func compareSeries(theirs, ours map[string]float64, tolerance float64) string {
	var diffs []string
	for k, v := range theirs {
		o, ok := ours[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s only in the Collector's", k))
		case v != o && math.Abs(v-o) > tolerance*math.Abs(o):
			diffs = append(diffs, fmt.Sprintf("%s: %v, ours %v", k, v, o))
		}
	}
	for k := range ours {
		if _, ok := theirs[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s only in ours", k))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

// seriesValues flattens a family of our scrape: labels to value (the count
// of a histogram or summary, as in Point).
func seriesValues(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		var v float64
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Untyped != nil:
			v = m.Untyped.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		case m.Summary != nil:
			v = float64(m.Summary.GetSampleCount())
		}
		out[labelsKey(labels)] = v
	}
	return out
}

func labelsKey(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

func dedupe(s []string) []string {
	sort.Strings(s)
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// waitPoints reads the Collector's output every half second until cond
// holds, and returns it.
func waitPoints(t *testing.T, file, what string, cond func([]Point) bool) []Point {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		data, err := os.ReadFile(file)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		points, err := ParsePoints(data)
		if err != nil {
			t.Fatalf("the Collector's output: %v", err)
		}
		if cond(points) {
			return points
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// scrape is one scrape of ours.
type scrape struct {
	start    time.Time
	families map[string]*dto.MetricFamily
}

type scraper struct {
	mu       sync.Mutex
	byJob    map[string][]scrape
	failures map[string]int
}

// startScraping scrapes each job's URL every ownScrapeEvery until the test ends.
func startScraping(t *testing.T, urls map[string]string) *scraper {
	s := &scraper{byJob: map[string][]scrape{}, failures: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for job, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(ownScrapeEvery)
			defer tick.Stop()
			for {
				start := time.Now()
				families, err := scrapeOnce(u)
				s.mu.Lock()
				if err == nil {
					s.byJob[job] = append(s.byJob[job], scrape{start, families})
				} else {
					s.failures[job]++
				}
				s.mu.Unlock()
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	return s
}

// scrapes returns the job's scrapes so far, and how many failed.
func (s *scraper) scrapes(job string) ([]scrape, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]scrape(nil), s.byJob[job]...), s.failures[job]
}

func scrapeOnce(u string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// otlpSink stands in for Honeycomb: it takes OTLP/HTTP posts and keeps
// their paths, headers and sizes.
type otlpSink struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []otlpRequest
}

type otlpRequest struct {
	path   string
	header http.Header
	size   int64
}

func newOTLPSink(t *testing.T) *otlpSink {
	s := &otlpSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, otlpRequest{r.URL.Path, r.Header.Clone(), n})
		s.mu.Unlock()
		// An empty ExportMetricsServiceResponse: everything accepted.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *otlpSink) requests() []otlpRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]otlpRequest(nil), s.reqs...)
}

// startExporter runs beam_exporter with args on a free port, waits until it
// answers, and returns its address.
func startExporter(t *testing.T, bin string, args ...string) string {
	t.Helper()
	addr := testkit.FreeAddr(t)
	start(t, "beam_exporter "+args[0], nil, bin, append(args, "--web.listen-address="+addr)...)
	testkit.WaitFor(t, "beam_exporter on "+addr, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return addr
}

// start runs bin until the test ends, and shows its output if the test failed.
func start(t *testing.T, name string, env []string, bin string, args ...string) {
	t.Helper()
	var out testkit.LockedBuffer
	cmd := exec.Command(bin, args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "BEAM_EXPORTER_ERLANG_COOKIE=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			t.Logf("%s, last lines of output:\n%s", name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
}

func binaryFromEnv(t *testing.T, env string) string {
	bin := os.Getenv(env)
	if bin == "" {
		t.Fatalf("%s is not set: run `make e2e-otel`, which builds the binaries", env)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return bin
}
