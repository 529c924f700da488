// /probe: any node of the fleet, collected on demand through the pool.

package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/fleet"
	"github.com/beam-exporter/beam_exporter/collector"
)

// probeHandler serves GET /probe?target=name@host[&auth_module=NAME]: one
// node's metrics, in a fresh registry, with the scrape deadline from the
// request. The exporter's own metrics stay on /metrics.
func probeHandler(f *fleet.Fleet, timeouts Timeouts, logger log.Logger) http.Handler {
	errorLog := promhttpLogger{logger}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, _, release, status, err := acquire(f, r)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		defer release()
		ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout(r, timeouts))
		defer cancel()
		reg := prometheus.NewRegistry()
		reg.MustRegister(e.Scrape(ctx))
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog:      errorLog,
			ErrorHandling: promhttp.ContinueOnError,
		}).ServeHTTP(w, r)
	})
}

// acquire takes the request's target from the pool. A failure comes with
// its status: 400 for a bad request, 403 for a target its auth module does
// not allow, 503 when the pool is full, 409 when the target is in use under
// another auth module (or cannot be pooled).
func acquire(f *fleet.Fleet, r *http.Request) (e *collector.Exporter, target string, release func(), status int, err error) {
	q := r.URL.Query()
	target = q.Get("target")
	module, err := f.Resolve(target, q.Get("auth_module"))
	switch {
	case errors.Is(err, fleet.ErrNotAllowed):
		return nil, "", nil, http.StatusForbidden, err
	case err != nil:
		return nil, "", nil, http.StatusBadRequest, err
	}
	e, release, err = f.Acquire(target, module)
	switch {
	case errors.Is(err, fleet.ErrTooManyTargets):
		return nil, "", nil, http.StatusServiceUnavailable, err
	case err != nil:
		return nil, "", nil, http.StatusConflict, err
	}
	return e, target, release, 0, nil
}
