// Command gen writes the Prometheus rule file from the thresholds file.
//
// From the repository root (this is what `make alerts` runs):
//
//	go run ./alerts/gen
//
// A deployment can keep its own thresholds outside the repository:
//
//	go run ./alerts/gen -thresholds my-thresholds.yml -out my.rules.yml
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/beam-exporter/beam_exporter/alerts"
)

func main() {
	in := flag.String("thresholds", "alerts/"+alerts.ThresholdsFile, "thresholds file to read")
	out := flag.String("out", "alerts/"+alerts.RulesFile, "rule file to write (- for stdout)")
	forOverride := flag.String("for", "", "replace every rule's `for` with this duration (tests only)")
	flag.Parse()
	if err := run(*in, *out, *forOverride); err != nil {
		fmt.Fprintln(os.Stderr, "alerts/gen:", err)
		os.Exit(1)
	}
}

func run(in, out, forOverride string) error {
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	t, err := alerts.ParseThresholds(data)
	if err != nil {
		return fmt.Errorf("%s: %v", in, err)
	}
	rules, err := alerts.Generate(t, alerts.Options{For: forOverride})
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = os.Stdout.Write(rules)
		return err
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, rules) {
		return nil
	}
	return os.WriteFile(out, rules, 0o644)
}
