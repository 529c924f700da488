// Command gen writes the Grafana dashboards (dashboards/*.json), taking the
// alert threshold lines from alerts/thresholds.yml.
//
// From the repository root (`make alerts` runs it after ./alerts/gen):
//
//	go run ./dashboards/gen
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/beam-exporter/beam_exporter/alerts"
	"github.com/beam-exporter/beam_exporter/dashboards/internal/builder"
)

func main() {
	in := flag.String("thresholds", "alerts/"+alerts.ThresholdsFile, "thresholds file to read")
	out := flag.String("out", "dashboards", "directory to write the dashboards to")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "dashboards/gen:", err)
		os.Exit(1)
	}
}

func run(in, dir string) error {
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	th, err := alerts.ParseThresholds(data)
	if err != nil {
		return fmt.Errorf("%s: %v", in, err)
	}
	files, err := builder.Render(th)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, files[name]) {
			continue
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}
