package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/sink/clickhouse/chtest"
	"github.com/beam-exporter/beam_exporter/collector"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

// fakeRanker ranks one process, freshly each time, or fails with err.
type fakeRanker struct {
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (f *fakeRanker) TopProcessesWithin(ctx context.Context, _ time.Duration) (collector.TopSnapshot, error) {
	f.calls.Add(1)
	if err := f.err.Load(); err != nil {
		return collector.TopSnapshot{}, *err
	}
	now := time.Now()
	p := collector.TopProcess{Rank: 1, Value: 4096, Pid: "<0.90.0>", Name: "big", RegisteredName: "big",
		CurrentFunction: "gen_server:loop/7", InitialCall: "proc_lib:init_p/5", MemoryBytes: 4096, MessageQueueLength: 2, Reductions: 77, Time: now}
	return collector.TopSnapshot{Time: now, Memory: []collector.TopProcess{p}, MessageQueue: []collector.TopProcess{}, Reductions: []collector.TopProcess{}}, nil
}

// On Debian's 18.16 the sink creates the portable variant and writes to it;
// the current variant is what 18.16 cannot create.
func TestCreatesThePortableTable(t *testing.T) {
	ch := clickhouseServer(t)
	if !strings.HasPrefix(ch.Version, "18.16.") {
		t.Logf("clickhouse-server %s, not Debian bookworm's 18.16", ch.Version)
	}
	table := uniqueTable("portable")
	s, err := New(context.Background(), testConfig(t, table))
	if err != nil {
		t.Fatal(err)
	}
	if got := query(t, "SELECT type FROM system.columns WHERE database = 'default' AND table = '"+table+"' AND name = 'timestamp'"); got != `DateTime(\'UTC\')` {
		t.Errorf("timestamp is %s, want the portable DateTime('UTC')", got)
	}
	if !(version{18, 16}).atLeast(currentFrom) {
		if _, err := ch.Query(strings.Replace(currentSchema, schemaCreate, "CREATE TABLE default."+uniqueTable("current"), 1)); err == nil {
			t.Errorf("ClickHouse %s created the current variant; the portable one is not needed there", ch.Version)
		}
	}
	stop := running(t, s, Watch{NodeName: "app@host", Node: &fakeRanker{}})
	waitWritten(t, s, 3, 20*time.Second)
	stop()
	rows := selectRows(t, "SELECT * FROM default."+table+" ORDER BY timestamp")
	_, written, dropped, buffered := s.Counts()
	if uint64(len(rows)) != written || dropped != 0 || buffered != 0 {
		t.Errorf("%d rows in the table, %d written, %d dropped, %d buffered", len(rows), written, dropped, buffered)
	}
	for _, r := range rows {
		if r["pid"] != "<0.90.0>" || r["node"] != "app@host" || r["pod"] != "shop-0" || r["deployment"] != "shop" ||
			r["metric"] != "memory" || fmt.Sprint(r["memory"]) != "4096" {
			t.Errorf("row %v", r)
		}
	}
	if err := testutil.GatherAndCompare(registryOf(s), strings.NewReader(`
# HELP beam_exporter_sink_rows_dropped_total Rows the ClickHouse sink gave up on: the oldest when its buffer was full (--sink.clickhouse.buffer-rows), or a batch ClickHouse refused three times.
# TYPE beam_exporter_sink_rows_dropped_total counter
beam_exporter_sink_rows_dropped_total 0
# HELP beam_exporter_sink_buffered_rows Rows sampled and not yet written to ClickHouse.
# TYPE beam_exporter_sink_buffered_rows gauge
beam_exporter_sink_buffered_rows 0
`), "beam_exporter_sink_rows_dropped_total", "beam_exporter_sink_buffered_rows"); err != nil {
		t.Error(err)
	}
}

// Bad configuration is refused at start with a message that says what is
// wrong; a server that does not answer is not (it may come), and then every
// failed attempt is counted while the rows wait.
func TestBadConfiguration(t *testing.T) {
	notClickHouseServer := httptest.NewServer(http.NotFoundHandler())
	defer notClickHouseServer.Close()
	misfit := uniqueTable("misfit")
	query(t, "CREATE TABLE default."+misfit+" (timestamp Date, pid UInt32, rank UInt8) ENGINE = MergeTree(timestamp, (pid), 8192)")

	for _, tc := range []struct {
		name   string
		change func(*Config)
		kind   failure
		says   []string
	}{
		{"not ClickHouse", func(c *Config) { c.URL, _ = url.Parse(notClickHouseServer.URL) }, notClickHouse,
			[]string{"does not answer as ClickHouse's HTTP interface does", "404"}},
		{"a wrong password", func(c *Config) { c.User, c.Password = "sink", "not-"+chtest.Password }, badAuth, []string{"Wrong password for user sink"}},
		{"an unknown user", func(c *Config) { c.User = "nobody" }, badAuth, []string{"nobody"}},
		{"a misfit table", func(c *Config) { c.Table = misfit }, badTable,
			[]string{"does not fit the sink", "column timestamp is Date", "column pid is UInt32", "column rank is UInt8", "column memory is missing"}},
		{"a missing table", func(c *Config) { c.Table, c.CreateTable = uniqueTable("missing"), false }, badTable,
			[]string{"does not exist", "--sink.clickhouse.create-table"}},
		{"a missing database", func(c *Config) { c.Database, c.CreateTable = "no_such_db", false }, badTable, []string{"does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, uniqueTable("bad"))
			tc.change(&cfg)
			s, err := New(context.Background(), cfg)
			if err == nil || s != nil || kindOf(err) != tc.kind {
				t.Fatalf("%v (%s), want a %s failure", err, kindOf(err), tc.kind)
			}
			for _, w := range tc.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}

	t.Run("the right password", func(t *testing.T) {
		cfg := testConfig(t, uniqueTable("auth"))
		cfg.User, cfg.Password = "sink", chtest.Password
		if _, err := New(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("nothing at the URL", func(t *testing.T) {
		cfg := testConfig(t, uniqueTable("unreachable"))
		cfg.URL, _ = url.Parse("http://" + testkit.FreeAddr(t) + "/")
		s, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatalf("a server that does not answer at start is not an error: %v", err)
		}
		running(t, s, Watch{NodeName: "app@host", Node: &fakeRanker{}})
		testkit.WaitFor(t, "three failed attempts", 20*time.Second, func() bool { return s.stats.failures[unreachable].Load() >= 3 })
		if sampled, written, _, buffered := s.Counts(); sampled == 0 || written != 0 || buffered == 0 {
			t.Errorf("sampled %d, written %d, buffered %d", sampled, written, buffered)
		}
	})

	t.Run("a node that cannot be ranked", func(t *testing.T) {
		s, err := New(context.Background(), testConfig(t, uniqueTable("norank")))
		if err != nil {
			t.Fatal(err)
		}
		r := &fakeRanker{}
		down := errors.New("connecting to the node: down")
		r.err.Store(&down)
		running(t, s, Watch{NodeName: "app@host", Node: r})
		testkit.WaitFor(t, "two failed rankings", 20*time.Second, func() bool { return s.stats.rankingFailures.Load() >= 2 })
		disabled := collector.ErrProcessesDisabled
		r.err.Store(&disabled)
		before, calls := s.stats.rankingFailures.Load(), r.calls.Load()
		testkit.WaitFor(t, "two more rounds", 20*time.Second, func() bool { return r.calls.Load() >= calls+2 })
		if after := s.stats.rankingFailures.Load(); after != before {
			t.Errorf("a node without the processes collector counted %d ranking failures", after-before)
		}
	})
}

// A table dropped under a running sink is a counted failure; the sink
// looks at the table again, creates it when it may, and goes on.
func TestTableDroppedWhileRunning(t *testing.T) {
	table := uniqueTable("dropped")
	s, err := New(context.Background(), testConfig(t, table))
	if err != nil {
		t.Fatal(err)
	}
	running(t, s, Watch{NodeName: "app@host", Node: &fakeRanker{}})
	waitWritten(t, s, 1, 20*time.Second)
	query(t, "DROP TABLE default."+table)
	testkit.WaitFor(t, "a table failure", 20*time.Second, func() bool { return s.stats.failures[badTable].Load() >= 1 })
	_, before, _, _ := s.Counts()
	waitWritten(t, s, before+1, 20*time.Second)
	if n := query(t, "SELECT count() FROM default."+table); n == "0" {
		t.Error("nothing written to the table created again")
	}
}
