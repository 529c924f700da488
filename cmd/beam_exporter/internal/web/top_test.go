package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/beam-exporter/beam_exporter/collector"
)

// fakeRanker answers TopProcesses with snap or err; stall makes it wait for
// the deadline instead.
type fakeRanker struct {
	snap  collector.TopSnapshot
	err   error
	stall bool
}

func (f fakeRanker) TopProcesses(ctx context.Context) (collector.TopSnapshot, error) {
	if f.stall {
		<-ctx.Done()
		return collector.TopSnapshot{}, ctx.Err()
	}
	return f.snap, f.err
}

// getTop requests /top from h, as JSON when asJSON, and returns the
// response.
func getTop(h http.Handler, query string, asJSON bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/top"+query, nil)
	if asJSON {
		req.Header.Set("Accept", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// ranking is a snapshot whose memory ranking is rows.
func ranking(rows ...collector.TopProcess) collector.TopSnapshot {
	return collector.TopSnapshot{Time: time.Unix(1700000000, 0), Processes: 47, WindowSeconds: 0.5, MemorySlices: 1,
		Memory: rows, MessageQueue: []collector.TopProcess{}, Reductions: []collector.TopProcess{}}
}

func TestTopHandler(t *testing.T) {
	logger := log.NewNopLogger()
	serveTop := func(r ranker) http.Handler { return topHandler(r, "app@host", time.Second, logger) }
	named := func(name string) collector.TopProcess {
		return collector.TopProcess{Rank: 1, Value: 5000, Pid: "<0.90.0>", Name: name, RegisteredName: name,
			CurrentFunction: "gen_server:loop/7", InitialCall: "proc_lib:init_p/5", MemoryBytes: 5000}
	}

	t.Run("json", func(t *testing.T) {
		rec := getTop(serveTop(fakeRanker{snap: ranking(named("big"))}), "", true)
		var snap collector.TopSnapshot
		if err := json.Unmarshal(rec.Body.Bytes(), &snap); rec.Code != http.StatusOK || err != nil {
			t.Fatalf("%d %v: %s", rec.Code, err, rec.Body)
		}
		if body := rec.Body.String(); !strings.Contains(body, `"pid":"<0.90.0>"`) || !strings.Contains(body, `"message_queue_length":[]`) {
			t.Errorf("the JSON escapes the pid, or writes an empty ranking as null: %s", body)
		}
		if snap.Node != "app@host" || len(snap.Memory) != 1 || snap.Memory[0].Name != "big" {
			t.Errorf("snapshot %+v", snap)
		}
		for header, want := range map[string]string{
			"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		} {
			if got := rec.Header().Get(header); got != want {
				t.Errorf("%s: %q, want %q", header, got, want)
			}
		}
	})
	t.Run("html escapes what the node sends", func(t *testing.T) {
		rec := getTop(serveTop(fakeRanker{snap: ranking(named("<script>alert(1)</script>"))}), "?target=app@host", false)
		page := rec.Body.String()
		if rec.Code != http.StatusOK || strings.Contains(page, "<script>") ||
			!strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(page, "&lt;0.90.0&gt;") ||
			!strings.Contains(page, "Top processes of app@host") {
			t.Errorf("%d:\n%s", rec.Code, page)
		}
		if got := rec.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("Content-Type %q", got)
		}
	})
	t.Run("exited", func(t *testing.T) {
		exited := collector.TopProcess{Rank: 1, Value: 5000, Pid: "<0.90.0>", Name: "exited", Exited: true}
		if page := getTop(serveTop(fakeRanker{snap: ranking(exited)}), "", false).Body.String(); !strings.Contains(page, "exited before it could be described") {
			t.Errorf("the page does not say the process exited:\n%s", page)
		}
	})
	t.Run("groups", func(t *testing.T) {
		snap := ranking(named("big"))
		snap.Groups = []collector.ProcessGroup{
			{Group: "<pool>", Processes: 5000, MemoryBytes: 14e6, MessageQueue: 3, ReductionsPerSecond: 120},
			{Group: "other", Processes: 40, MemoryBytes: 2e6},
		}
		h := serveTop(fakeRanker{snap: snap})
		rec := getTop(h, "", true)
		if body := rec.Body.String(); !strings.Contains(body,
			`"groups":[{"group":"<pool>","processes":5000,"memory_bytes":14000000,"message_queue_length":3,"reductions_per_second":120},`) {
			t.Errorf("the JSON's groups: %s", body)
		}
		page := getTop(h, "", false).Body.String()
		for _, want := range []string{"<h2>Process groups</h2>", "<td>&lt;pool&gt;</td><td class=\"n\">5000</td><td class=\"n\">14000000</td>", "<td>other</td>"} {
			if !strings.Contains(page, want) {
				t.Errorf("the page lacks %q:\n%s", want, page)
			}
		}
		without := serveTop(fakeRanker{snap: ranking(named("big"))})
		if body := getTop(without, "", true).Body.String(); strings.Contains(body, `"groups"`) {
			t.Errorf("groups in the JSON without process_groups: %s", body)
		}
		if page := getTop(without, "", false).Body.String(); strings.Contains(page, "Process groups") {
			t.Errorf("a groups table without process_groups:\n%s", page)
		}
	})
	t.Run("no ranking", func(t *testing.T) {
		if page := getTop(serveTop(fakeRanker{snap: ranking()}), "", false).Body.String(); !strings.Contains(page, "No process ranks here.") {
			t.Errorf("an empty ranking:\n%s", page)
		}
	})
	for _, c := range []struct {
		name   string
		ranker ranker
		query  string
		status int
		says   string
	}{
		{"another target", fakeRanker{snap: ranking()}, "?target=other@host", http.StatusBadRequest, "watches app@host only"},
		{"processes disabled", fakeRanker{err: collector.ErrProcessesDisabled}, "", http.StatusNotFound, "--no-collector.processes"},
		{"node down", fakeRanker{err: errors.New("connecting to the node: down")}, "", http.StatusBadGateway, "app@host: connecting to the node"},
		{"node too slow", fakeRanker{stall: true}, "", http.StatusGatewayTimeout, "deadline"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := topHandler(c.ranker, "app@host", 50*time.Millisecond, logger)
			if rec := getTop(h, c.query, true); rec.Code != c.status || !strings.Contains(rec.Body.String(), c.says) {
				t.Errorf("%d %q, want %d and %q", rec.Code, rec.Body, c.status, c.says)
			}
		})
	}
}
