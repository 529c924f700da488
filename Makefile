# beam_exporter: `make demo` and `make test` set up what they need.
GO        ?= go
BINARY    := beam_exporter
PROBE_SRC := erlnode/probe/beam_exporter_probe_v8.erl
PROBE_BIN := erlnode/probe/beam_exporter_probe_v8.beam
# Debian packages the tests and the demo run against.
PACKAGES  := erlang-nox prometheus prometheus-alertmanager debootstrap elixir clickhouse-server

.PHONY: all build test test-repeat vet deps probe alerts demo bench bench-go bench-fleet bench-sink fuzz e2e-otel clean

all: build

# build stamps the version, revision, branch, build user and date into
# prometheus/common/version, as promu does, for --version and
# beam_exporter_build_info. The version is the VERSION file's (git describe
# without one); `make build VERSION=1.2.3` overrides it.
VERSION    ?= $(shell cat VERSION 2>/dev/null || git describe --tags --always 2>/dev/null)
REVISION   ?= $(shell git rev-parse HEAD 2>/dev/null)
BRANCH     ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
BUILD_USER ?= $(shell id -un)@$(shell hostname)
BUILD_DATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS    := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildUser=$(BUILD_USER) \
	-X $(VERSION_PKG).BuildDate=$(BUILD_DATE)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BINARY) ./cmd/beam_exporter

# deps installs the Debian packages when they are missing. As root it runs
# apt-get; otherwise it stops and prints the command to run.
deps:
	@missing=""; \
	command -v erl >/dev/null || missing="$$missing erlang-nox"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v amtool >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	command -v elixir >/dev/null || missing="$$missing elixir"; \
	command -v clickhouse-server >/dev/null || [ -x /usr/sbin/clickhouse-server ] || missing="$$missing clickhouse-server"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo ">> installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing:$$missing"; echo "run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

vet:
	$(GO) vet ./...

# test runs vet and every test, with the race detector, including the
# integration tests against real OTP 25, 27 and 29 nodes (the first run builds
# the 27 and 29 roots).
test: deps vet
	$(GO) test -race -count=1 -timeout 20m ./...

# test-repeat runs the packages that start real nodes, Prometheus or
# Alertmanager COUNT times over (5), to catch a flaky test before it lands.
# About 4 minutes a round on 2 cores.
COUNT ?= 5
SINK_SECONDS ?= 300
INTEGRATION_PKGS := ./collector/... ./erlnode/... ./cmd/beam_exporter/... ./dashboards/...
test-repeat: deps
	$(GO) test -race -count=$(COUNT) -timeout 120m $(INTEGRATION_PKGS)

# probe recompiles the embedded probe module, deterministically.
probe:
	erlc +deterministic -o erlnode/probe $(PROBE_SRC)

# alerts regenerates the rule files and the dashboards' threshold lines from
# alerts/thresholds.yml.
alerts:
	$(GO) run ./alerts/gen
	$(GO) run ./dashboards/gen

# demo runs a throwaway node with a synthetic workload and the exporter against it.
demo: deps build
	$(GO) run ./cmd/beam_demo

# bench starts its own nodes of 1k, 10k, 100k and 1M processes (plus 5,000
# ETS tables each), measures the exporter and the in-VM baseline on them and
# prints the report BENCHMARKS.md records; about 7 minutes on 2 cores.
# BENCH_FLAGS passes options, e.g. BENCH_FLAGS=--bench.sizes=1000,10000.
bench: deps build
	$(GO) run ./cmd/beam_bench --bench.exporter=./$(BINARY) $(BENCH_FLAGS)

# bench-go runs the Go benchmarks of the decode and exposition paths; compare
# two runs with benchstat.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count=6 ./collector ./erlnode

# bench-fleet starts FLEET_NODES real nodes (50), one exporter in fleet mode
# and Prometheus scraping every node through /probe every 5 s for
# FLEET_SECONDS (600), then prints the scrape latencies, failures and the
# exporter's CPU and memory.
bench-fleet: deps
	$(GO) test -tags fleetbench -count=1 -timeout 60m -run '^TestFleetBench$$' -v ./cmd/beam_exporter

# bench-sink runs one node of 10,000 processes and one exporter scraped every
# 15 s, for SINK_SECONDS (300) without the ClickHouse sink and as long with
# it, and prints the exporter's and the node's CPU, the exporter's memory
# and the rows the sink writes.
bench-sink: deps
	SINK_SECONDS=$(SINK_SECONDS) $(GO) test -tags sinkbench -count=1 -timeout 60m -run '^TestSinkBench$$' -v ./cmd/beam_exporter

# fuzz runs every fuzz target for FUZZTIME each; plain `go test` runs only
# their committed seed corpus. New crashers land in testdata/fuzz.
FUZZTIME ?= 30s
fuzz:
	@for pkg in ./collector ./erlnode; do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo ">> $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# e2e-otel builds a minimal OpenTelemetry Collector from the Go module proxy
# (cmd/otel_e2e/otelcol, a Go module of its own) and runs cmd/otel_e2e/otelcol.yaml, the
# configuration observability.md shows, against the exporter in both shapes
# watching a real node. Not part of `make test`: the Collector's first build
# took 13 to 17 minutes on 2 busy cores, later ones 2 to 18 s.
OTELCOL := otelcol-beam
e2e-otel: deps build
	@start=$$(date +%s); cd cmd/otel_e2e/otelcol && $(GO) build -o $(CURDIR)/$(OTELCOL) . && \
	  echo ">> $(OTELCOL) built in $$(( $$(date +%s) - start )) s"
	BEAM_EXPORTER_BIN=$(CURDIR)/$(BINARY) OTELCOL_BIN=$(CURDIR)/$(OTELCOL) \
	  $(GO) test -tags e2eotel -count=1 -timeout 30m -run '^TestCollectorEndToEnd$$' -v ./cmd/otel_e2e

clean:
	rm -f $(BINARY) $(OTELCOL)
