package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/sink/clickhouse/chtest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

// The package's one clickhouse-server.
var shared chtest.Shared

func clickhouseServer(t *testing.T) *chtest.Server { return shared.Get(t) }

func TestMain(m *testing.M) {
	// The collectors' flags take their defaults when kingpin parses.
	if _, err := kingpin.CommandLine.Parse(nil); err != nil {
		panic(err)
	}
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

// testConfig is a sink writing every second to table on the test server,
// creating it.
func testConfig(t *testing.T, table string) Config {
	u, _ := url.Parse(clickhouseServer(t).URL)
	return Config{URL: u, Database: "default", Table: table, User: "default", PasswordSource: "none",
		Interval: time.Second, Timeout: 5 * time.Second, BufferRows: 1000, CreateTable: true,
		Deployment: "shop", Pod: "shop-0", RankingTimeout: 10 * time.Second, Logger: log.NewNopLogger()}
}

// uniqueTable is a table name no other test or run uses.
func uniqueTable(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), time.Now().UnixNano())
}

// query runs a statement on the test server and fails the test on error.
func query(t *testing.T, statement string) string {
	t.Helper()
	out, err := clickhouseServer(t).Query(statement)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// queryCount runs a statement that answers one count.
func queryCount(t *testing.T, statement string) uint64 {
	t.Helper()
	out := query(t, statement)
	n, err := strconv.ParseUint(out, 10, 64)
	if err != nil {
		t.Fatalf("%s answered %q, not a count", statement, out)
	}
	return n
}

// selectRows runs a SELECT and decodes its JSONEachRow answer. 64-bit
// integers come as strings (18.16 quotes them), the rest as json.Number:
// compare them with fmt.Sprint.
func selectRows(t *testing.T, statement string) []map[string]any {
	t.Helper()
	out := query(t, statement+" FORMAT JSONEachRow")
	var rows []map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		rows = append(rows, m)
	}
	return rows
}

// running starts s on w and stops it when the test ends; stop stops it
// earlier and waits for its last write.
func running(t *testing.T, s *Sink, w Watch) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := s.Start(ctx, w)
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// waitWritten waits until the sink has written at least n rows.
func waitWritten(t *testing.T, s *Sink, n uint64, limit time.Duration) {
	t.Helper()
	testkit.WaitFor(t, fmt.Sprintf("%d rows written", n), limit, func() bool {
		_, written, _, _ := s.Counts()
		return written >= n
	})
}

// registryOf registers s alone.
func registryOf(s *Sink) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(s)
	return r
}
