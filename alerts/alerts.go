// Package alerts holds beam_exporter's Prometheus alerting and recording
// rules, the thresholds they are generated from, and an example Alertmanager
// configuration.
//
// alerts/thresholds.yml is the single place where thresholds are set;
// alerts/beam_exporter.rules.yml is generated from it by
// `go run ./alerts/gen` (make alerts) and committed. The files are embedded so
// that tests, including live end-to-end tests, use exactly what ships.
package alerts

import (
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The pattern always matches thresholds.yml, so the package still compiles
// before the rule file has been generated for the first time.
//
//go:embed *.yml
var files embed.FS

// ThresholdsFile is the name of the thresholds file in alerts/.
const ThresholdsFile = "thresholds.yml"

// AlertmanagerExampleFile is the name of the example Alertmanager config.
const AlertmanagerExampleFile = "alertmanager.example.yml"

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// ThresholdsYAML returns the embedded alerts/thresholds.yml.
func ThresholdsYAML() []byte { return mustRead(ThresholdsFile) }

// AlertmanagerExample returns the embedded alerts/alertmanager.example.yml.
func AlertmanagerExample() []byte { return mustRead(AlertmanagerExampleFile) }

// RuleFiles returns the embedded Prometheus rule files (*.rules.yml) by file
// name, ready to be written next to a prometheus.yml.
func RuleFiles() map[string][]byte {
	out := map[string][]byte{}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".rules.yml") {
			out[e.Name()] = mustRead(e.Name())
		}
	}
	return out
}

// ParseRuleFile decodes a Prometheus rule file.
func ParseRuleFile(data []byte) (RuleFile, error) {
	var rf RuleFile
	if err := yaml.Unmarshal(data, &rf); err != nil {
		return RuleFile{}, err
	}
	return rf, nil
}

// Rules returns every alerting rule of the embedded rule files, in file order.
func Rules() ([]Rule, error) { return embeddedRules(func(r Rule) bool { return r.Alert != "" }) }

// Records returns every recording rule of the embedded rule files, in file order.
func Records() ([]Rule, error) { return embeddedRules(func(r Rule) bool { return r.Record != "" }) }

func embeddedRules(keep func(Rule) bool) ([]Rule, error) {
	var out []Rule
	rf := RuleFiles()
	for _, name := range slices.Sorted(maps.Keys(rf)) {
		f, err := ParseRuleFile(rf[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if keep(r) {
					out = append(out, r)
				}
			}
		}
	}
	return out, nil
}
