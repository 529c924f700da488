package otel

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// observability.md shows otelcol.yaml whole, in a yaml block of its own:
// the configuration a reader copies is the one `make e2e-otel` runs.
func TestObservabilityShowsCollectorConfig(t *testing.T) {
	doc, err := os.ReadFile("../../observability.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(doc), "```yaml\n")[1:] {
		body, _, ok := strings.Cut(block, "```")
		if ok && body == CollectorConfig {
			return
		}
	}
	t.Error("observability.md has no ```yaml block equal to cmd/otel_e2e/otelcol.yaml; copy the file into its OpenTelemetry section")
}

func TestRender(t *testing.T) {
	d := Deployment{
		Sidecar:   "127.0.0.1:1001",
		Fleet:     "127.0.0.1:1002",
		Node:      "otel_e2e@vm",
		Honeycomb: "http://127.0.0.1:1003",
	}
	config, err := Render(d)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Receivers struct {
			Prometheus struct {
				Config struct {
					ScrapeConfigs []struct {
						JobName       string              `yaml:"job_name"`
						MetricsPath   string              `yaml:"metrics_path"`
						Params        map[string][]string `yaml:"params"`
						StaticConfigs []struct {
							Targets []string `yaml:"targets"`
						} `yaml:"static_configs"`
						RelabelConfigs []struct {
							Replacement string `yaml:"replacement"`
						} `yaml:"relabel_configs"`
					} `yaml:"scrape_configs"`
				} `yaml:"config"`
			} `yaml:"prometheus"`
		} `yaml:"receivers"`
		Exporters map[string]struct {
			Endpoint string            `yaml:"endpoint"`
			Headers  map[string]string `yaml:"headers"`
		} `yaml:"exporters"`
	}
	if err := yaml.Unmarshal([]byte(config), &c); err != nil {
		t.Fatal(err)
	}
	jobs := c.Receivers.Prometheus.Config.ScrapeConfigs
	if len(jobs) != 2 {
		t.Fatalf("%d scrape jobs, want the sidecar's and the fleet's", len(jobs))
	}
	sidecar, fleet := jobs[0], jobs[1]
	if sidecar.JobName != SidecarJob || fleet.JobName != FleetJob {
		t.Errorf("jobs %q and %q, want %q and %q", sidecar.JobName, fleet.JobName, SidecarJob, FleetJob)
	}
	if got := sidecar.StaticConfigs[0].Targets; len(got) != 1 || got[0] != d.Sidecar {
		t.Errorf("sidecar targets %v, want [%s]", got, d.Sidecar)
	}
	if got := fleet.StaticConfigs[0].Targets; len(got) != 1 || got[0] != d.Node {
		t.Errorf("fleet targets %v, want [%s]", got, d.Node)
	}
	if fleet.MetricsPath != "/probe" || fleet.Params["auth_module"][0] != ExampleAuthModule ||
		fleet.RelabelConfigs[len(fleet.RelabelConfigs)-1].Replacement != d.Fleet {
		t.Errorf("fleet job %+v: want /probe?auth_module=%s on %s", fleet, ExampleAuthModule, d.Fleet)
	}
	honeycomb := c.Exporters["otlp_http/honeycomb"]
	if honeycomb.Endpoint != d.Honeycomb || honeycomb.Headers["x-honeycomb-dataset"] != HoneycombDataset ||
		honeycomb.Headers["x-honeycomb-team"] != "${env:HONEYCOMB_API_KEY}" {
		t.Errorf("otlp_http/honeycomb %+v", honeycomb)
	}

	d.Node = ""
	if _, err := Render(d); err == nil {
		t.Error("Render without a node: no error")
	}
}
