// Finding the Debian mirror to debootstrap from, read from the machine's own apt sources.

package debroot

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// debianMirror returns the Debian archive URL to build roots from:
// $BEAM_EXPORTER_DEBIAN_MIRROR if set, else the first "deb" URI in the
// machine's apt sources whose path ends in /debian. The host is never
// hard-coded, because machines sit behind different mirrors or proxies and
// only the ones apt is configured for are reachable.
func debianMirror() (string, error) {
	if m := strings.TrimSpace(os.Getenv("BEAM_EXPORTER_DEBIAN_MIRROR")); m != "" {
		return strings.TrimRight(m, "/"), nil
	}
	return mirrorFromAptSources("/etc/apt")
}

// mirrorFromAptSources scans etcApt/sources.list and then
// etcApt/sources.list.d/*.list and *.sources in apt's (alphabetical) order.
func mirrorFromAptSources(etcApt string) (string, error) {
	files := []string{filepath.Join(etcApt, "sources.list")}
	var parts []string
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", pat))
		parts = append(parts, m...)
	}
	sort.Strings(parts)
	files = append(files, parts...)

	var read []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return "", err
		}
		read = append(read, f)
		var uris []string
		if strings.HasSuffix(f, ".sources") {
			uris = debURIsDeb822(string(data))
		} else {
			uris = debURIsOneLine(string(data))
		}
		for _, u := range uris {
			if isDebianArchive(u) {
				return strings.TrimRight(u, "/"), nil
			}
		}
	}
	return "", fmt.Errorf("no apt source with a URI ending in /debian in %v; set BEAM_EXPORTER_DEBIAN_MIRROR", read)
}

// isDebianArchive reports whether u is a URI debootstrap can use whose path
// ends in /debian (so not debian-security, a snapshot, or a third-party repo).
func isDebianArchive(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	switch p.Scheme {
	case "http", "https", "file":
	default:
		return false
	}
	return strings.HasSuffix(strings.TrimRight(p.Path, "/"), "/debian")
}

// debURIsOneLine returns the URIs of "deb" lines in the one-line format:
// deb [ option=value ... ] uri suite [component ...]
func debURIsOneLine(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "deb ") && !strings.HasPrefix(line, "deb\t") {
			continue
		}
		line = strings.TrimSpace(line[3:])
		if strings.HasPrefix(line, "[") {
			// Options may contain spaces, so skip up to the closing bracket.
			end := strings.IndexByte(line, ']')
			if end < 0 {
				continue
			}
			line = strings.TrimSpace(line[end+1:])
		}
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

// debURIsDeb822 returns the URIs of enabled stanzas of Types "deb" in the
// deb822 format used by *.sources files.
func debURIsDeb822(s string) []string {
	var out []string
	flush := func(fields map[string]string) {
		if len(fields) == 0 {
			return
		}
		if strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no") {
			return
		}
		hasDeb := false
		for _, ty := range strings.Fields(fields["types"]) {
			if ty == "deb" {
				hasDeb = true
			}
		}
		if hasDeb {
			out = append(out, strings.Fields(fields["uris"])...)
		}
	}
	fields := map[string]string{}
	last := ""
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush(fields)
			fields, last = map[string]string{}, ""
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			// Continuation line of a multi-line field.
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(k))
		fields[last] = strings.TrimSpace(v)
	}
	flush(fields)
	return out
}
