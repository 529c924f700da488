// The /top drill-down: the processes behind the ranks, with what must never be a label.
package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// TopSnapshot is the processes collector's latest ranking of one node.
type TopSnapshot struct {
	Node string `json:"node"`
	// Time is when the ranking was taken.
	Time time.Time `json:"time"`
	// Processes is how many processes the scan read.
	Processes int `json:"processes"`
	// WindowSeconds is the mean time between a process's two reductions reads.
	WindowSeconds float64 `json:"window_seconds"`
	// MemorySlices above 1 means memory is ranked over that many refreshes,
	// one slice of the processes each; each entry has its own time.
	MemorySlices int          `json:"memory_slices"`
	Memory       []TopProcess `json:"memory"`
	MessageQueue []TopProcess `json:"message_queue_length"`
	Reductions   []TopProcess `json:"reductions_per_second"`
}

// TopProcess is one rank of a ranking: the ranked value, and the process as
// the node described it right after ranking it.
type TopProcess struct {
	Rank int `json:"rank"`
	// Value is what the process is ranked by: bytes, messages, or
	// reductions per second.
	Value float64 `json:"value"`
	// Pid is as pid_to_list/1 writes it on the node; list_to_pid/1 in a
	// remote shell on that node reads it back.
	Pid string `json:"pid"`
	// Name is the process label of the beam_process_* metrics.
	Name               string  `json:"name"`
	RegisteredName     string  `json:"registered_name"`
	CurrentFunction    string  `json:"current_function"`
	InitialCall        string  `json:"initial_call"`
	MemoryBytes        float64 `json:"memory_bytes"`
	MessageQueueLength float64 `json:"message_queue_length"`
	Reductions         float64 `json:"reductions"`
	// Exited is true when the process was gone by the time the probe came
	// to describe it; only Rank, Value and Pid are then known, and Name is
	// "exited", as in the metrics' process label.
	Exited bool      `json:"exited"`
	Time   time.Time `json:"time"`
}

// ErrProcessesDisabled answers /top when there is no ranking to show.
var ErrProcessesDisabled = errors.New("the processes collector is disabled (--no-collector.processes), so there is no ranking to show")

// A ranker is a collector that keeps, beside its metrics, the ranking they
// come from (the processes collector does); TopProcesses serves it.
type ranker interface {
	// latestRanking is the newest ranking taken on connection generation
	// generation, if any.
	latestRanking(generation uint64) (TopSnapshot, bool)
}

// TopProcesses returns the latest ranking of the node's processes, with the
// details the metrics cannot carry as labels. It goes through the ranking
// collector's tier cache, as a scrape would: a ranking younger than its
// tier costs the node nothing.
func (e *Exporter) TopProcesses(ctx context.Context) (TopSnapshot, error) {
	if e.ranker == nil {
		return TopSnapshot{}, ErrProcessesDisabled
	}
	t := e.target
	if err := t.EnsureConnected(ctx); err != nil {
		return TopSnapshot{}, fmt.Errorf("connecting to the node: %w", err)
	}
	if !t.Up() {
		return TopSnapshot{}, errors.New("not connected to the node")
	}
	gen := t.Generation()
	if _, _, err := e.ranking.get(ctx, t); err != nil {
		return TopSnapshot{}, err
	}
	snap, ok := e.ranker.latestRanking(gen)
	if !ok {
		return TopSnapshot{}, errors.New("the connection to the node was re-established during the ranking; try again")
	}
	return snap, nil
}

// topSource finds the exporter that /top should ask for a request, and
// says which node it watches. release is called when the answer is sent.
type topSource func(r *http.Request) (e *Exporter, node string, release func(), status int, err error)

// topHandler serves a ranking as JSON to clients that accept it, and as an
// HTML page to everyone else (a browser).
func topHandler(source topSource, timeout time.Duration, logger log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, node, release, status, err := source(r)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		defer release()
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		snap, err := e.TopProcesses(ctx)
		if err != nil {
			status := http.StatusBadGateway
			switch {
			case errors.Is(err, ErrProcessesDisabled):
				status = http.StatusNotFound
			case errors.Is(err, context.DeadlineExceeded):
				status = http.StatusGatewayTimeout
			}
			level.Debug(logger).Log("msg", "no ranking for /top", "node", node, "err", err)
			http.Error(w, fmt.Sprintf("%s: %v", node, err), status)
			return
		}
		snap.Node = node
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff") // the JSON carries the node's text unescaped
		if acceptsJSON(r) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false) // pids read as the node writes them: "<0.91.0>"
			enc.Encode(snap)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := topPage.Execute(w, snap); err != nil {
			level.Warn(logger).Log("msg", "writing /top", "err", err)
		}
	})
}

func acceptsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// TopHandler serves /top for the one node of a sidecar exporter. A target
// parameter, if given, must name that node.
func TopHandler(e *Exporter, node string, timeout time.Duration, logger log.Logger) http.Handler {
	return topHandler(func(r *http.Request) (*Exporter, string, func(), int, error) {
		if target := r.URL.Query().Get("target"); target != "" && target != node {
			return nil, "", nil, http.StatusBadRequest,
				fmt.Errorf("this exporter watches %s only; give --config.file to reach other nodes through /top?target=", node)
		}
		return e, node, func() {}, 0, nil
	}, timeout, logger)
}

// TopHandler serves /top?target=name@host[&auth_module=NAME] from the pool
// /probe uses, so the two share connections and tier caches. With local set
// (a sidecar beside the fleet), a request without auth_module for the local
// node is answered by local.
func (f *Fleet) TopHandler(local http.Handler, localNode string, timeout time.Duration) http.Handler {
	fleet := topHandler(func(r *http.Request) (*Exporter, string, func(), int, error) {
		target, module, err := f.parseProbe(r)
		if err != nil {
			return nil, "", nil, http.StatusBadRequest, err
		}
		t, err := f.acquire(target, module)
		if err != nil {
			status, err := f.acquireFailure(err)
			return nil, "", nil, status, err
		}
		return t.exporter, target, func() { f.release(t) }, 0, nil
	}, timeout, f.opts.Logger)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if local != nil && q.Get("auth_module") == "" && (q.Get("target") == "" || q.Get("target") == localNode) {
			local.ServeHTTP(w, r)
			return
		}
		fleet.ServeHTTP(w, r)
	})
}

var topPage = template.Must(template.New("top").Funcs(template.FuncMap{
	"figure": func(v float64) string { return fmt.Sprintf("%.0f", v) },
	"stamp":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ranking": func(title, unit string, rows []TopProcess) any {
		return struct {
			Title, Unit string
			Rows        []TopProcess
		}{title, unit, rows}
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Top processes of {{.Node}}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 0.95em; }
</style>
</head>
<body>
<h1>Top processes of {{.Node}}</h1>
<p>Ranked at {{stamp .Time}} over {{.Processes}} processes; reductions over a window of {{printf "%.3f" .WindowSeconds}} s.
{{- if gt .MemorySlices 1}} Memory is ranked over {{.MemorySlices}} refreshes, one slice of the processes each.{{end}}
The pid is as this node's shell reads it: <code>erlang:process_info(list_to_pid("&lt;0.123.0&gt;"))</code>.</p>
{{template "ranking" (ranking "Memory" "bytes" .Memory)}}
{{template "ranking" (ranking "Message queue" "messages" .MessageQueue)}}
{{template "ranking" (ranking "Reductions" "per second" .Reductions)}}
</body>
</html>
{{define "ranking"}}<h2>{{.Title}}</h2>
{{if .Rows}}<table>
<tr><th>Rank</th><th>{{.Unit}}</th><th>Pid</th><th>Name</th><th>Registered name</th><th>Current function</th><th>Initial call</th><th>Memory (bytes)</th><th>Message queue</th><th>Reductions</th></tr>
{{range .Rows}}<tr><td class="n">{{.Rank}}</td><td class="n">{{figure .Value}}</td><td><code>{{.Pid}}</code></td>
{{- if .Exited}}<td colspan="7">exited before it could be described</td>
{{- else}}<td>{{.Name}}</td><td>{{.RegisteredName}}</td><td><code>{{.CurrentFunction}}</code></td><td><code>{{.InitialCall}}</code></td><td class="n">{{figure .MemoryBytes}}</td><td class="n">{{figure .MessageQueueLength}}</td><td class="n">{{figure .Reductions}}</td>{{end}}</tr>
{{end}}</table>
{{else}}<p>No process ranks here.</p>
{{end}}{{end}}`))
