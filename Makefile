# beam_exporter: `make demo` and `make test` set up what they need.
GO        ?= go
BINARY    := beam_exporter
PROBE_SRC := erlnode/probe/beam_exporter_probe_v1.erl
PROBE_BIN := erlnode/probe/beam_exporter_probe_v1.beam
# Debian packages the tests and the demo run against.
PACKAGES  := erlang-nox prometheus prometheus-alertmanager debootstrap

.PHONY: all build test vet deps probe alerts demo bench bench-go clean

all: build

build:
	$(GO) build -o $(BINARY) ./cmd/beam_exporter

# deps installs the Debian packages when they are missing. As root it runs
# apt-get; otherwise it stops and prints the command to run.
deps:
	@missing=""; \
	command -v erl >/dev/null || missing="$$missing erlang-nox"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v amtool >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
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

# test runs vet and every test, including the integration tests against real
# OTP 25, 27 and 29 nodes (the first run builds the 27 and 29 roots).
#
# The live collector tests run several ergo nodes in one process, and ergo
# v1.999.224 writes a package-level variable (node.corePID) whenever a node
# starts, which the race detector rightly flags. The exporter itself runs one
# ergo node per process, so those tests run without -race; everything else,
# the exporter binary of the end-to-end tests included, runs with it.
test: deps vet
	$(GO) test -race -count=1 -timeout 20m -skip '^TestLive' ./...
	$(GO) test -count=1 -timeout 20m -run '^TestLive' ./collector

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
# prints the report BENCHMARKS.md records; about 15 minutes on 2 cores.
# BENCH_FLAGS passes options, e.g. BENCH_FLAGS=--bench.sizes=1000,10000.
bench: deps build
	$(GO) run ./cmd/beam_bench --bench.exporter=./$(BINARY) $(BENCH_FLAGS)

# bench-go runs the Go benchmarks of the decode and exposition paths; compare
# two runs with benchstat.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count=6 ./collector ./erlnode

clean:
	rm -f $(BINARY)
