// The Collector configuration observability.md shows, with a deployment's
// own addresses in place of the examples.

package otel

import (
	_ "embed"
	"fmt"
	"strings"
)

// CollectorConfig is otelcol.yaml, the configuration observability.md shows
// and `make e2e-otel` runs.
//
//go:embed otelcol.yaml
var CollectorConfig string

// The example values in CollectorConfig that stand for a deployment's own.
const (
	ExampleSidecar    = "app-1:9882"               // a sidecar exporter's address
	ExampleFleet      = "beam-exporter:9882"       // the fleet exporter's address
	ExampleNode       = "payments@app-1"           // a node scraped through the fleet exporter
	ExampleHoneycomb  = "https://api.honeycomb.io" // the OTLP/HTTP endpoint
	ExampleAuthModule = "payments"                 // the fleet exporter's auth module (kept as it is)
	HoneycombDataset  = "beam-metrics"             // the x-honeycomb-dataset header

	SidecarJob = "beam"       // the scrape job of the sidecar shape, /metrics
	FleetJob   = "beam_fleet" // the scrape job of the fleet shape, /probe
)

// Deployment holds the values that replace the examples.
type Deployment struct {
	Sidecar, Fleet, Node, Honeycomb string
}

// Render returns CollectorConfig with d's values in place of the examples.
// Each example must occur exactly once, so that an edit of otelcol.yaml
// that would leave an example address in place fails here rather than
// making the check scrape nothing.
func Render(d Deployment) (string, error) {
	config := CollectorConfig
	for _, r := range []struct{ example, value string }{
		{ExampleSidecar, d.Sidecar},
		{ExampleFleet, d.Fleet},
		{ExampleNode, d.Node},
		{ExampleHoneycomb, d.Honeycomb},
	} {
		if n := strings.Count(config, r.example); n != 1 {
			return "", fmt.Errorf("otelcol.yaml has %q %d times, want once", r.example, n)
		}
		if r.value == "" {
			return "", fmt.Errorf("no value for %q", r.example)
		}
		config = strings.Replace(config, r.example, r.value, 1)
	}
	return config, nil
}
