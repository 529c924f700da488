// promtool's linter over the exposition of a live scrape.

package collector

import (
	"bytes"
	"os/exec"
	"sort"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// lintFamilies runs `promtool check metrics` on fams, encoded as the text
// exposition /metrics serves, and fails the test on any complaint.
func lintFamilies(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not on PATH (make deps installs it)")
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, n := range names {
		if err := enc.Encode(fams[n]); err != nil {
			t.Fatal(err)
		}
	}
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = &buf
	if out, err := lint.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
