// The exporter's endpoints on one mux, and the landing page that links them.

package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/beam-exporter/beam_exporter/cmd/beam_exporter/internal/fleet"
	"github.com/beam-exporter/beam_exporter/collector"
)

// Config is what the exporter serves. A sidecar has Node, a fleet has Fleet,
// and an exporter may be both.
type Config struct {
	MetricsPath string
	// Own is the exporter's own metrics, served on MetricsPath.
	Own prometheus.Gatherer
	// Node and NodeName are the one node served on MetricsPath beside Own.
	Node     *collector.Exporter
	NodeName string
	// Fleet is the pool behind /probe, and behind /top for other nodes.
	Fleet *fleet.Fleet
	// EPMDHosts, when given, are listed on /targets.
	EPMDHosts []string
	EPMDPort  int
	// Timeouts derive the deadline of a scrape; /top waits Timeouts.Default.
	Timeouts Timeouts
	Logger   log.Logger
}

// NewHandler routes every endpoint the configuration calls for, and puts a
// landing page linking them on / unless the metrics are served there.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Node == nil && cfg.Fleet == nil {
		return nil, errors.New("nothing to serve: neither a node nor a fleet")
	}
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	mux := http.NewServeMux()
	links := []web.LandingLinks{{Address: cfg.MetricsPath, Text: "Metrics"}}

	metrics := promhttp.HandlerFor(cfg.Own, promhttp.HandlerOpts{})
	var top http.Handler
	if cfg.Node != nil {
		metrics = metricsHandler(cfg.Node, cfg.Own, cfg.Timeouts, cfg.Logger)
		top = topHandler(cfg.Node, cfg.NodeName, cfg.Timeouts.Default, cfg.Logger)
		links = append(links, web.LandingLinks{Address: "/top", Text: "Top processes of " + cfg.NodeName + " (JSON with Accept: application/json)"})
	}
	mux.Handle(cfg.MetricsPath, metrics)
	if cfg.Fleet != nil {
		mux.Handle("/probe", probeHandler(cfg.Fleet, cfg.Timeouts, cfg.Logger))
		top = fleetTopHandler(cfg.Fleet, top, cfg.NodeName, cfg.Timeouts.Default, cfg.Logger)
		links = append(links,
			web.LandingLinks{Address: "/probe", Text: "Probe a node: /probe?target=name@host&auth_module=NAME"},
			web.LandingLinks{Address: "/top", Text: "Top processes of a node: /top?target=name@host&auth_module=NAME"})
	}
	mux.Handle("/top", top)
	if len(cfg.EPMDHosts) > 0 {
		mux.Handle("/targets", targetsHandler(cfg.EPMDHosts, cfg.EPMDPort, cfg.Logger))
		links = append(links, web.LandingLinks{Address: "/targets", Text: "Nodes registered in EPMD (http_sd_configs)"})
	}
	if cfg.MetricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "BEAM Exporter",
			Description: "Prometheus exporter for the runtime of BEAM nodes",
			Version:     version.Info(),
			Links:       links,
		})
		if err != nil {
			return nil, fmt.Errorf("building the landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	return mux, nil
}
