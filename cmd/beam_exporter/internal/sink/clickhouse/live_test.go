package clickhouse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/web"
	"github.com/beam-exporter/beam_exporter/collector"
	"github.com/beam-exporter/beam_exporter/erlnode"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

// Known processes on the test node: a hog holding a large heap, and a
// mailbox holding queued messages.
const (
	hogName     = "sink_test_hog"
	mailboxName = "sink_test_mailbox"
	queued      = 20_000
)

// liveNode is a real node with the hog and the mailbox, an exporter for it
// as main builds one (the processes and memory collectors), and its web
// surface, with the sink's metrics on /metrics once one is registered.
type liveNode struct {
	node     *erltest.Node
	exporter *collector.Exporter
	own      *prometheus.Registry
	url      string
}

func startLiveNode(t *testing.T, tiers collector.Tiers) *liveNode {
	t.Helper()
	node := erltest.Start(t, erltest.Options{Name: erltest.UniqueName("sink")})
	node.Eval(t, `Self = self(),
		spawn(fun() -> register(`+hogName+`, self()), Heap = lists:seq(1, 2000000), Self ! hog,
		               receive stop -> length(Heap) end end),
		receive hog -> ok end,
		M = spawn(fun() -> register(`+mailboxName+`, self()), receive stop -> ok end end),
		spawn(fun() -> [M ! {filler, N} || N <- lists:seq(1, `+strconv.Itoa(queued)+`)], Self ! sent end),
		receive sent -> ok end, ok.`)
	client, err := erlnode.New(erlnode.Config{Target: node.Name, Cookie: node.Cookie, LoadProbe: true,
		Session: collector.Session([]string{"processes"}), Logger: log.NewNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	e, err := collector.NewExporterWith(client, tiers, []string{"memory", "processes"}, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	l := &liveNode{node: node, exporter: e, own: prometheus.NewRegistry()}
	h, err := web.NewHandler(web.Config{MetricsPath: "/metrics", Own: l.own, Node: e, NodeName: node.Name,
		Timeouts: web.Timeouts{Offset: 500 * time.Millisecond, Default: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	l.url = srv.URL
	return l
}

// top GETs /top as JSON.
func (l *liveNode) top(t *testing.T) collector.TopSnapshot {
	t.Helper()
	status, body := testkit.Get(t, l.url+"/top", "Accept", "application/json")
	var snap collector.TopSnapshot
	if err := json.Unmarshal([]byte(body), &snap); status != http.StatusOK || err != nil {
		t.Fatalf("/top: %d %v: %s", status, err, body)
	}
	return snap
}

// One sample of a real node: its rows say what /top says of the same
// ranking, the hog and the mailbox at rank 1 of theirs. Then Knock's two
// queries, as observability.md has them, over a few samples.
func TestLiveRowsAndKnocksQueries(t *testing.T) {
	// Tiers of an hour: /top serves the ranking the sink took, not one of
	// its own.
	l := startLiveNode(t, collector.Tiers{Fast: time.Hour, Slow: time.Hour})

	t.Run("rows match /top", func(t *testing.T) {
		table := uniqueTable("rows")
		cfg := testConfig(t, table)
		cfg.Interval = time.Hour // one round, at start
		s, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		stop := running(t, s, Watch{NodeName: l.node.Name, Node: l.exporter})
		waitWritten(t, s, 1, 30*time.Second)
		stop()
		snap := l.top(t)
		rows := selectRows(t, "SELECT *, toUnixTimestamp(timestamp) AS unix FROM default."+table+" ORDER BY metric, rank")
		_, written, _, _ := s.Counts()
		if uint64(len(rows)) != written {
			t.Fatalf("%d rows in the table, %d written", len(rows), written)
		}
		byKey := map[string]map[string]any{}
		for _, r := range rows {
			byKey[fmt.Sprint(r["metric"], " ", r["rank"])] = r
			if fmt.Sprint(r["unix"]) != strconv.FormatInt(snap.Time.Unix(), 10) {
				t.Errorf("row at %v, /top's ranking at %d (%s)", r["unix"], snap.Time.Unix(), snap.Time)
			}
		}
		n := 0
		for _, ranking := range []struct {
			metric string
			ranks  []collector.TopProcess
		}{{metricMemory, snap.Memory}, {metricMessageQueue, snap.MessageQueue}, {metricReductions, snap.Reductions}} {
			for _, p := range ranking.ranks {
				n++
				r, ok := byKey[fmt.Sprint(ranking.metric, " ", p.Rank)]
				if !ok {
					t.Errorf("no row for %s rank %d (%s)", ranking.metric, p.Rank, p.Pid)
					continue
				}
				got := fmt.Sprintf("%v|%v|%v|%v|%v|%v|%v|%v|%v", r["pid"], r["name"], r["registered_name"], r["initial_call"],
					r["current_function"], r["memory"], r["message_queue_len"], r["reductions"], r["node"])
				want := fmt.Sprintf("%v|%v|%v|%v|%v|%v|%v|%v|%v", p.Pid, p.Name, p.RegisteredName, p.InitialCall,
					p.CurrentFunction, count(p.MemoryBytes), count(p.MessageQueueLength), count(p.Reductions), l.node.Name)
				value, _ := strconv.ParseFloat(fmt.Sprint(r["value"]), 64)
				if got != want || math.Abs(value-p.Value) > 1e-9*math.Max(1, p.Value) {
					t.Errorf("%s rank %d:\n row %s %v\n/top %s %v", ranking.metric, p.Rank, got, value, want, p.Value)
				}
			}
		}
		if n != len(rows) {
			t.Errorf("/top ranks %d processes, the table has %d rows", n, len(rows))
		}
		if len(snap.Memory) == 0 || snap.Memory[0].Name != hogName || len(snap.MessageQueue) == 0 ||
			snap.MessageQueue[0].Name != mailboxName || snap.MessageQueue[0].Value != queued {
			t.Errorf("the hog or the mailbox is not at rank 1: %+v / %+v", snap.Memory, snap.MessageQueue)
		}
	})

	t.Run("Knock's queries", func(t *testing.T) {
		table := uniqueTable("knock")
		cfg := testConfig(t, table)
		cfg.Deployment, cfg.Pod = "knock", "knock-0"
		s, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		stop := running(t, s, Watch{NodeName: l.node.Name, Node: l.exporter})
		const samples = 4
		testkit.WaitFor(t, "4 samples written", 60*time.Second, func() bool {
			_, _, _, buffered := s.Counts()
			n, _ := strconv.Atoi(query(t, "SELECT uniqExact(timestamp) FROM default."+table))
			return buffered == 0 && n >= samples
		})
		stop()
		hog := selectRows(t, "SELECT pid FROM default."+table+" WHERE name = '"+hogName+"' LIMIT 1")[0]["pid"]
		taken := query(t, "SELECT uniqExact(timestamp) FROM default."+table)

		fliers := selectRows(t, docQuery(t, "frequent-fliers", table))
		if len(fliers) == 0 {
			t.Fatal("no frequent fliers")
		}
		top := fliers[0]
		if top["pid"] != hog || top["process"] != hogName || fmt.Sprint(top["samples"]) != taken ||
			fmt.Sprint(top["best_rank"]) != "1" || fmt.Sprint(top["average_rank"]) != "1" || top["pod"] != "knock-0" {
			t.Errorf("the most frequent flier is %v, want the hog %v in all %s samples at rank 1", top, hog, taken)
		}

		peaks := selectRows(t, docQuery(t, "peak-by-minute", table))
		want := selectRows(t, "SELECT toStartOfMinute(timestamp) AS minute, max(memory) AS peak FROM default."+table+
			" WHERE metric = 'memory' AND name = '"+hogName+"' GROUP BY minute ORDER BY minute")
		if len(peaks) != len(want) || len(peaks) == 0 {
			t.Fatalf("peaks %v, the hog's minutes %v", peaks, want)
		}
		for i, p := range peaks {
			if p["minute"] != want[i]["minute"] || fmt.Sprint(p["peak_process_memory_bytes"]) != fmt.Sprint(want[i]["peak"]) ||
				p["process"] != hogName || p["pid"] != hog || p["pod"] != "knock-0" || p["deployment"] != "knock" {
				t.Errorf("minute %d: %v, want the hog's peak %v", i, p, want[i])
			}
		}

		// The Grafana panels run the same queries, with the plugin's macros.
		panels := dashboardQueries(t, table)
		fliers = selectRows(t, panels["Frequent fliers (memory)"])
		if len(fliers) == 0 || fliers[0]["pid"] != hog || fmt.Sprint(fliers[0]["samples"]) != taken {
			t.Errorf("the frequent-fliers panel starts with %v, want the hog %v", fliers, hog)
		}
		series := selectRows(t, panels["Peak process memory by minute, per pod"])
		if len(series) != len(want) {
			t.Fatalf("the peak panel has %d points, want %d", len(series), len(want))
		}
		for i, p := range series {
			if p["pod"] != "knock-0" || fmt.Sprint(p["peak_process_memory_bytes"]) != fmt.Sprint(want[i]["peak"]) {
				t.Errorf("peak panel point %d: %v, want %v", i, p, want[i])
			}
		}
	})
}

// dashboardQueries reads the ClickHouse dashboard, checks each panel has
// what a reader needs (a description, a unit, the dashboard's data source)
// and returns each panel's SQL for table, with Grafana's macros and
// variables expanded as the plugin does: the last hour, deployment knock,
// pod knock-0.
func dashboardQueries(t *testing.T, table string) map[string]string {
	t.Helper()
	text, err := os.ReadFile("../../../../../dashboards/clickhouse/beam-process-history.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title, Description string
			Datasource         struct{ Type, UID string }
			FieldConfig        struct{ Defaults struct{ Unit string } }
			Targets            []struct{ RawSQL string }
		}
	}
	if err := json.Unmarshal(text, &d); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	expand := strings.NewReplacer(
		"$__timeFilter(timestamp)", fmt.Sprintf("timestamp >= toDateTime(%d) AND timestamp <= toDateTime(%d)", now-3600, now+60),
		"${deployment:singlequote}", "'knock'",
		"${pod:singlequote}", "'knock-0'",
		"default.beam_top_processes", "default."+table)
	out := map[string]string{}
	for _, p := range d.Panels {
		if p.Description == "" || p.FieldConfig.Defaults.Unit == "" || p.Datasource.Type != "grafana-clickhouse-datasource" ||
			p.Datasource.UID != "${datasource}" || len(p.Targets) != 1 {
			t.Errorf("panel %q lacks a description, a unit or the dashboard's data source, or has other than one query", p.Title)
			continue
		}
		out[p.Title] = expand.Replace(p.Targets[0].RawSQL)
		if strings.Contains(out[p.Title], "$") {
			t.Errorf("panel %q: a macro or variable the test does not expand: %s", p.Title, out[p.Title])
		}
	}
	return out
}

// docQuery is the query observability.md marks with name, for table.
func docQuery(t *testing.T, name, table string) string {
	t.Helper()
	doc, err := os.ReadFile("../../../../../observability.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- clickhouse-query: " + regexp.QuoteMeta(name) + " -->\n```sql\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatalf("observability.md has no query %s", name)
	}
	return strings.ReplaceAll(string(m[1]), "default.beam_top_processes", "default."+table)
}

// ClickHouse stops for 20 s while the node is sampled every second and
// scraped every 250 ms: no scrape fails, the buffer stays within its limit,
// every dropped row is counted, and rows are written again after the
// restart, each once.
func TestOutage(t *testing.T) {
	ch := clickhouseServer(t)
	l := startLiveNode(t, collector.Tiers{Fast: 2 * time.Second, Slow: 2 * time.Second})
	table := uniqueTable("outage")
	cfg := testConfig(t, table)
	cfg.BufferRows = 60
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.own.MustRegister(s)
	stop := running(t, s, Watch{NodeName: l.node.Name, Node: l.exporter})
	waitWritten(t, s, 1, 30*time.Second)

	// The scraper: every scrape must answer with the node up, the ranking
	// valid, and the buffer within its limit.
	var (
		mu          sync.Mutex
		scrapes     int
		failed      []string
		maxBuffered float64
	)
	scraping, stopScraping := context.WithCancel(context.Background())
	scraperDone := make(chan struct{})
	go func() {
		defer close(scraperDone)
		for scraping.Err() == nil {
			problem, buffered := scrape(l.url)
			mu.Lock()
			scrapes++
			if problem != "" {
				failed = append(failed, problem)
			}
			maxBuffered = math.Max(maxBuffered, buffered)
			mu.Unlock()
			select {
			case <-scraping.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { stopScraping(); <-scraperDone })

	if err := ch.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			ch.Restart()
		}
	})
	testkit.WaitFor(t, "rows dropped while ClickHouse is down", 20*time.Second, func() bool {
		_, _, dropped, _ := s.Counts()
		return dropped > 0
	})
	// The outage lasts 20 s, as the issue has it; nothing is waited for here.
	time.Sleep(time.Until(stopped.Add(20 * time.Second)))
	_, writtenBefore, droppedDuring, _ := s.Counts()
	if err := ch.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	back := time.Now()
	waitWritten(t, s, writtenBefore+1, 30*time.Second)
	testkit.WaitFor(t, "rows sampled after the restart in the table", 30*time.Second, func() bool {
		n, _ := ch.Query(fmt.Sprintf("SELECT count() FROM default.%s WHERE timestamp >= %d", table, back.Unix()+1))
		return n != "" && n != "0"
	})
	stopScraping()
	<-scraperDone
	stop()

	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 || scrapes < 20 {
		t.Errorf("%d scrapes, %d failed: %v", scrapes, len(failed), failed)
	}
	if maxBuffered > float64(cfg.BufferRows) || maxBuffered == 0 {
		t.Errorf("the buffer held up to %v rows, limit %d", maxBuffered, cfg.BufferRows)
	}
	sampled, written, dropped, buffered := s.Counts()
	if sampled != written+dropped+uint64(buffered) || droppedDuring == 0 {
		t.Errorf("sampled %d, written %d, dropped %d (%d during the outage), buffered %d", sampled, written, dropped, droppedDuring, buffered)
	}
	if s.stats.failures[unreachable].Load() == 0 {
		t.Error("no unreachable failure counted")
	}
	inTable := queryCount(t, "SELECT count() FROM default."+table)
	distinct := queryCount(t, "SELECT count() FROM (SELECT DISTINCT node, timestamp, metric, rank FROM default."+table+")")
	// An insert sent that got no answer (the server went down under it, or
	// did not answer in time) may still have been written: its batch is sent
	// again, and a table that keeps no insert hashes (the portable schema,
	// which 18.16 gets) then holds those rows twice; if the batch is dropped
	// instead, its rows are in the table but not counted written. Each such
	// insert accounts for at most one batch of rows; any other difference
	// is a row lost or written twice for no reason.
	unanswered := s.stats.unanswered.Load()
	slack := unanswered * uint64(s.buf.batch)
	if s.shape != nil && s.shape.dedup {
		slack = 0
	}
	if distinct < written || distinct > written+slack || inTable-distinct > slack {
		t.Errorf("%d rows in the table (%d distinct), %d written; %d inserts got no answer, batches of %d rows, deduplicated: %v",
			inTable, distinct, written, unanswered, s.buf.batch, slack == 0)
	}
	if inTable != written {
		t.Logf("%d rows in the table (%d distinct), %d written: within what %d unanswered inserts allow", inTable, distinct, written, unanswered)
	}
	t.Logf("%d scrapes; sampled %d rows, written %d, dropped %d; buffer at most %v of %d", scrapes, sampled, written, dropped, maxBuffered, cfg.BufferRows)
}

// scrape GETs /metrics and says what is wrong with it, if anything, and
// how many rows the sink had buffered.
func scrape(base string) (problem string, buffered float64) {
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("HTTP %d", resp.StatusCode), 0
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body.Bytes()))
	if err != nil {
		return err.Error(), 0
	}
	value := func(name, label, want string) (float64, bool) {
		f, ok := families[name]
		if !ok {
			return 0, false
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				match = match || (lp.GetName() == label && lp.GetValue() == want)
			}
			if match {
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	if up, _ := value("beam_up", "", ""); up != 1 {
		return "beam_up 0", 0
	}
	if ok, _ := value("beam_scrape_collector_success", "collector", "processes"); ok != 1 {
		return "the processes collector failed", 0
	}
	buffered, found := value("beam_exporter_sink_buffered_rows", "", "")
	if !found {
		return "no beam_exporter_sink_buffered_rows", 0
	}
	return "", buffered
}
