package erlnode

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestProbeBinaryMatchesSource recompiles the probe and compares it with the
// embedded binary, so that the .beam never drifts from its source.
func TestProbeBinaryMatchesSource(t *testing.T) {
	erlc, err := exec.LookPath("erlc")
	if err != nil {
		t.Fatal("erlc is not on PATH; install it with: apt-get install -y erlang-nox")
	}
	dir := t.TempDir()
	src := filepath.Join("probe", ProbeModule+".erl")
	out, err := exec.Command(erlc, "+deterministic", "-o", dir, src).CombinedOutput()
	if err != nil {
		t.Fatalf("erlc %s: %v\n%s", src, err, out)
	}
	fresh, err := os.ReadFile(filepath.Join(dir, ProbeModule+".beam"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, probeBeam) {
		// Different OTP releases compile to different bytes, and the embedded
		// probe must come from the oldest release we support (OTP 25).
		if rel, err := exec.Command("erl", "-noshell", "-eval",
			`io:put_chars(erlang:system_info(otp_release)), halt().`).Output(); err == nil {
			t.Logf("erlc here belongs to OTP %s", rel)
		}
		t.Fatal("embedded probe is stale: run `make probe`")
	}
}
