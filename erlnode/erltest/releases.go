// Which OTP releases the integration suite runs against and where each one comes from.

package erltest

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest/debroot"
)

// HostOTP is the OTP major of the host's own erl (Debian bookworm's erlang-nox).
const HostOTP = "25"

// debianSuites maps an OTP major to the Debian suite whose erlang-base ships it.
var debianSuites = map[string]string{
	"27": "trixie",
	"29": "sid",
}

// defaultReleases are the majors tested when BEAM_EXPORTER_TEST_OTP is unset.
var defaultReleases = []string{"25", "27", "29"}

// Releases returns the OTP majors the integration suite runs against: "25","27","29" by default;
// env BEAM_EXPORTER_TEST_OTP (comma-separated, e.g. "25") restricts it.
func Releases() []string {
	env := strings.TrimSpace(os.Getenv("BEAM_EXPORTER_TEST_OTP"))
	if env == "" {
		return slices.Clone(defaultReleases)
	}
	var out []string
	for _, r := range strings.Split(env, ",") {
		r = strings.TrimSpace(r)
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// suite returns the Debian suite providing the OTP major, "" for the host's
// release, and false for a major this package cannot provide.
func suite(otp string) (string, bool) {
	if otp == HostOTP {
		return "", true
	}
	s, ok := debianSuites[otp]
	return s, ok
}

// rootFor returns the chroot directory providing the OTP major otp, building
// and caching it first if needed, or "" for the host's own release. It
// fails the test if the root cannot be had.
func rootFor(t testing.TB, otp string) string {
	t.Helper()
	name, ok := suite(otp)
	if !ok {
		t.Fatalf("erltest: OTP %q is not provided (supported: %s from the host, %v from Debian roots)", otp, HostOTP, debianSuites)
	}
	if name == "" {
		return ""
	}
	root, err := debroot.Ensure(name, otp)
	if err != nil {
		t.Fatalf("erltest: OTP %s root (Debian %s): %v", otp, name, err)
	}
	return root
}
