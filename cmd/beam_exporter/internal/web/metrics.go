// /metrics: one scrape of the node per request, with the deadline Prometheus gives.

package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/beam-exporter/beam_exporter/collector"
)

// Timeouts say how the scrape deadline is derived.
type Timeouts struct {
	// Offset is kept back from Prometheus's scrape timeout, so that the
	// answer arrives before Prometheus gives up on it.
	Offset time.Duration
	// Default applies when the request does not say (a curl by hand).
	Default time.Duration
}

// metricsHandler serves the node's metrics, gathered with a fresh registry
// per request (so that each scrape carries its own deadline), together with
// the exporter's own metrics from own.
func metricsHandler(e *collector.Exporter, own prometheus.Gatherer, timeouts Timeouts, logger log.Logger) http.Handler {
	errorLog := promhttpLogger{logger}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout(r, timeouts))
		defer cancel()
		reg := prometheus.NewRegistry()
		reg.MustRegister(e.Scrape(ctx))
		promhttp.HandlerFor(prometheus.Gatherers{own, reg}, promhttp.HandlerOpts{
			ErrorLog:      errorLog,
			ErrorHandling: promhttp.ContinueOnError,
		}).ServeHTTP(w, r)
	})
}

// scrapeTimeout reads X-Prometheus-Scrape-Timeout-Seconds and keeps the
// offset back; a missing or nonsensical header gets the default.
func scrapeTimeout(r *http.Request, timeouts Timeouts) time.Duration {
	header := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
	seconds, err := strconv.ParseFloat(header, 64)
	if header == "" || err != nil || seconds <= 0 {
		return timeouts.Default
	}
	timeout := time.Duration(seconds*float64(time.Second)) - timeouts.Offset
	if timeout <= 0 {
		// An offset larger than the timeout still leaves the scrape some time.
		timeout = time.Duration(seconds * float64(time.Second) / 2)
	}
	return timeout
}

type promhttpLogger struct{ logger log.Logger }

func (l promhttpLogger) Println(v ...any) { l.logger.Log("msg", "serving metrics", "err", v) }
