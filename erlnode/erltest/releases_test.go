package erltest

import (
	"testing"
)

func TestReleasesEnv(t *testing.T) {
	t.Setenv("BEAM_EXPORTER_TEST_OTP", " 27, 25,27,")
	if got := Releases(); len(got) != 2 || got[0] != "27" || got[1] != "25" {
		t.Fatalf("Releases() = %q", got)
	}
	t.Setenv("BEAM_EXPORTER_TEST_OTP", "")
	if got := Releases(); len(got) != 3 {
		t.Fatalf("Releases() = %q", got)
	}
}
