// Package otel holds the OpenTelemetry Collector configuration that
// observability.md documents, and what checks it: a real Collector built
// from the Go module proxy (the module cmd/otel_e2e/otelcol) scrapes the exporter
// and writes what it would send to Honeycomb to a file, which this package
// reads back.
//
// Files:
//
//	otelcol.yaml   the Collector configuration, as observability.md shows it
//	config.go      that file, and the deployment's addresses put in place of its examples
//	otlpjson.go    reading the Collector's file exporter output (OTLP/JSON) into points
//	e2e_test.go    `make e2e-otel` (build tag e2eotel): Collector, exporters and a real node
package otel
