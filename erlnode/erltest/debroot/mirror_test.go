// Unit tests for reading the Debian mirror out of apt sources.

package debroot

import (
	"testing"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

func TestMirrorFromAptSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) { testkit.WriteFile(t, dir, name, body, 0o644) }
	write("sources.list", "# deb http://commented.example/debian bookworm main\n"+
		"deb-src http://src.example/debian bookworm main\n"+
		"deb [arch=amd64 signed-by=/k.gpg] https://third.example/apt stable main\n")
	write("sources.list.d/a.sources", "Types: deb\n"+
		"# http://snapshot.example/archive/debian/20250520T000000Z\n"+
		"URIs: http://security.example/debian-security\n"+
		"Suites: bookworm-security\n\n"+
		"Enabled: no\nTypes: deb\nURIs: http://disabled.example/debian\n\n"+
		"Types: deb deb-src\nURIs:\n http://mirror.example/debian/\n http://second.example/debian\nSuites: bookworm\n")
	write("sources.list.d/b.list", "deb http://later.example/debian bookworm main\n")
	write("sources.list.d/c.list.disabled", "deb http://ignored.example/debian bookworm main\n")

	got, err := mirrorFromAptSources(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://mirror.example/debian"; got != want {
		t.Fatalf("mirror = %q, want %q", got, want)
	}

	// The one-line format wins when it comes first.
	write("sources.list", "deb [ trusted=yes ] http://first.example/debian/ bookworm main\n")
	if got, _ := mirrorFromAptSources(dir); got != "http://first.example/debian" {
		t.Fatalf("mirror = %q, want http://first.example/debian", got)
	}

	if _, err := mirrorFromAptSources(t.TempDir()); err == nil {
		t.Fatal("expected an error without sources")
	}
}
