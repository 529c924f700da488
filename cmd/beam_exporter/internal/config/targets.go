// Target patterns: the nodes an auth module's cookie may be offered to.

package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// targetPattern is one entry of an auth module's targets: name@host, where
// `*` in either part stands for any run of characters (none included), or
// `*` alone for every node. Everything else matches itself, case included,
// as node names are atoms.
type targetPattern struct {
	text string
	re   *regexp.Regexp // nil for `*`
}

// patternChars are what a node name or host may hold, besides `*`: letters,
// digits, `_` and `-` in the name; dots too in the host (long names, IPv4).
var (
	patternNameChars = regexp.MustCompile(`^[A-Za-z0-9_*-]+$`)
	patternHostChars = regexp.MustCompile(`^[A-Za-z0-9_.*-]+$`)
)

func parseTargetPattern(text string) (targetPattern, error) {
	if text == "*" {
		return targetPattern{text: text}, nil
	}
	name, host, ok := strings.Cut(text, "@")
	switch {
	case text == "":
		return targetPattern{}, errors.New("an empty pattern")
	case !ok:
		return targetPattern{}, errors.New("no @: write name@host, with * for any run of characters, or * alone for every node")
	case strings.Contains(host, "@"):
		return targetPattern{}, errors.New("more than one @")
	case name == "" || host == "":
		return targetPattern{}, errors.New("an empty name or host: write * to match any")
	case !patternNameChars.MatchString(name):
		return targetPattern{}, errors.New("the name part may hold only letters, digits, _, - and *")
	case !patternHostChars.MatchString(host):
		return targetPattern{}, errors.New("the host part may hold only letters, digits, _, -, . and *")
	}
	re := "^" + globToRegexp(name) + "@" + globToRegexp(host) + "$"
	return targetPattern{text: text, re: regexp.MustCompile(re)}, nil
}

// globToRegexp quotes everything but `*`, which matches within one part.
func globToRegexp(glob string) string {
	parts := strings.Split(glob, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return strings.Join(parts, "[^@]*")
}

func (p targetPattern) matches(node string) bool {
	return p.re == nil || p.re.MatchString(node)
}

// everything reports whether the pattern admits every node: `*`, or `*@*`.
func (p targetPattern) everything() bool {
	return p.re == nil || p.text == "*@*"
}

// Targets are the node-name patterns an auth module may be used for. The
// zero value names none, and so allows no node.
type Targets struct {
	patterns []targetPattern
}

// ParseTargets checks every pattern, naming the bad one.
func ParseTargets(texts ...string) (Targets, error) {
	var ts Targets
	for _, text := range texts {
		p, err := parseTargetPattern(text)
		if err != nil {
			return Targets{}, fmt.Errorf("pattern %q: %w", text, err)
		}
		ts.patterns = append(ts.patterns, p)
	}
	return ts, nil
}

// Allows reports whether node matches one of the patterns.
func (ts Targets) Allows(node string) bool {
	for _, p := range ts.patterns {
		if p.matches(node) {
			return true
		}
	}
	return false
}

// Everything reports whether a pattern admits every node, so that anyone
// who can reach /probe can make the exporter offer the cookie to a node of
// their choosing.
func (ts Targets) Everything() bool {
	for _, p := range ts.patterns {
		if p.everything() {
			return true
		}
	}
	return false
}

// None reports whether there are no patterns, which refuses every node:
// the default, for a config written before targets existed.
func (ts Targets) None() bool { return len(ts.patterns) == 0 }

// String lists the patterns as written.
func (ts Targets) String() string {
	texts := make([]string, len(ts.patterns))
	for i, p := range ts.patterns {
		texts[i] = p.text
	}
	return strings.Join(texts, ",")
}
