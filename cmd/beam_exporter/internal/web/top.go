// /top: the processes behind the beam_process_* ranks, as JSON or as a page.

package web

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/fleet"
	"github.com/beam-exporter/beam_exporter/collector"
)

// ranker is what /top asks for a node's ranking; *collector.Exporter is one.
type ranker interface {
	TopProcesses(ctx context.Context) (collector.TopSnapshot, error)
}

// topSource finds the ranker that /top should ask for a request, and says
// which node it watches. release is called when the answer is sent.
type topSource func(r *http.Request) (e ranker, node string, release func(), status int, err error)

// rankingHandler serves a ranking as JSON to clients that accept it, and as an
// HTML page to everyone else (a browser).
func rankingHandler(source topSource, timeout time.Duration, logger log.Logger) http.Handler {
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
			case errors.Is(err, collector.ErrProcessesDisabled):
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

// topHandler serves /top for the one node of a sidecar exporter. A target
// parameter, if given, must name that node.
func topHandler(e ranker, node string, timeout time.Duration, logger log.Logger) http.Handler {
	return rankingHandler(func(r *http.Request) (ranker, string, func(), int, error) {
		if target := r.URL.Query().Get("target"); target != "" && target != node {
			return nil, "", nil, http.StatusBadRequest,
				fmt.Errorf("this exporter watches %s only; give --config.file to reach other nodes through /top?target=", node)
		}
		return e, node, func() {}, 0, nil
	}, timeout, logger)
}

// fleetTopHandler serves /top?target=name@host[&auth_module=NAME] from the
// pool /probe uses, so the two share connections and tier caches. With local
// set (a sidecar beside the fleet), a request without auth_module for the
// local node is answered by local.
func fleetTopHandler(f *fleet.Fleet, local http.Handler, localNode string, timeout time.Duration, logger log.Logger) http.Handler {
	pooled := rankingHandler(func(r *http.Request) (ranker, string, func(), int, error) {
		e, target, release, status, err := acquire(f, r)
		if err != nil {
			return nil, "", nil, status, err
		}
		return e, target, release, 0, nil
	}, timeout, logger)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if local != nil && q.Get("auth_module") == "" && (q.Get("target") == "" || q.Get("target") == localNode) {
			local.ServeHTTP(w, r)
			return
		}
		pooled.ServeHTTP(w, r)
	})
}

//go:embed top.html
var topHTML string

var topPage = template.Must(template.New("top").Funcs(template.FuncMap{
	"figure": func(v float64) string { return fmt.Sprintf("%.0f", v) },
	"stamp":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ranking": func(title, unit string, rows []collector.TopProcess) any {
		return struct {
			Title, Unit string
			Rows        []collector.TopProcess
		}{title, unit, rows}
	},
}).Parse(topHTML))
