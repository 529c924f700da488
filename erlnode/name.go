// Node names: parsing and the exporter's own stable name.

package erlnode

import (
	"fmt"
	"os"
	"strings"
)

// SplitNodeName splits name@host and checks both parts. Short (name@host) and
// long (name@host.example.com) names are both accepted.
func SplitNodeName(name string) (alive, host string, err error) {
	alive, host, ok := strings.Cut(name, "@")
	switch {
	case !ok:
		return "", "", fmt.Errorf("node name %q has no @host part", name)
	case alive == "" || host == "":
		return "", "", fmt.Errorf("node name %q: both the name and the host must be non-empty", name)
	case strings.Contains(host, "@"):
		return "", "", fmt.Errorf("node name %q has more than one @", name)
	case len(alive) > 255:
		return "", "", fmt.Errorf("node name %q is longer than 255 bytes", name)
	}
	for _, r := range alive {
		if !nameChar(r) {
			return "", "", fmt.Errorf("node name %q: character %q is not allowed in the name part", name, r)
		}
	}
	// A host is a DNS name or an IPv4 or IPv6 address; anything else could
	// never be resolved, and the exporter would retry it forever.
	for _, r := range host {
		if !nameChar(r) && r != ':' {
			return "", "", fmt.Errorf("node name %q: character %q is not allowed in the host part", name, r)
		}
	}
	return alive, host, nil
}

func nameChar(r rune) bool {
	return r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// defaultLocalName is beam_exporter@<host>. It is stable on purpose: every
// distinct name that ever connects costs the target an atom that is never
// collected. A node started with -name only talks to long names and one
// started with -sname only to short ones, so the style follows the target's.
func defaultLocalName(target string) string {
	short, long := defaultLocalNames()
	if _, targetHost, _ := strings.Cut(target, "@"); strings.Contains(targetHost, ".") {
		return long
	}
	return short
}

// defaultLocalNames are the default names for short-name and for long-name
// targets.
func defaultLocalNames() (short, long string) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	shortHost, _, _ := strings.Cut(host, ".")
	if !strings.Contains(host, ".") {
		// No domain to offer: an address is a valid long-name host, and nobody
		// connects back to the exporter, so it need not be reachable.
		host = "127.0.0.1"
	}
	return "beam_exporter@" + shortHost, "beam_exporter@" + host
}
