// Program otelcol-beam is the smallest OpenTelemetry Collector that runs
// cmd/otel_e2e/otelcol.yaml, the configuration observability.md documents, plus the
// file exporter `make e2e-otel` reads: the prometheus receiver, the
// metric_start_time and batch processors, the otlp_http and file exporters.
//
// It is what the Collector's builder (ocb) would generate for that list of
// components, written out by hand so that building it needs nothing but the
// Go module proxy. It lives in a Go module of its own, so that none of the
// Collector's dependencies reach the exporter's go.mod.
package main

import (
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/otelcol"
)

func main() {
	set := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-beam",
			Description: "OpenTelemetry Collector for beam_exporter's end-to-end check",
			Version:     release,
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
				},
			},
		},
	}
	// cobra prints the error itself.
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		os.Exit(1)
	}
}
