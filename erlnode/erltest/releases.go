// Which OTP releases the integration suite runs against and where each one comes from.
package erltest

import (
	"os"
	"slices"
	"strings"
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

// Suite returns the Debian suite providing the OTP major, "" for the host's
// release, and false for a major this package cannot provide.
func Suite(otp string) (string, bool) {
	if otp == HostOTP {
		return "", true
	}
	s, ok := debianSuites[otp]
	return s, ok
}
