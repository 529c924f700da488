// Choosing an OpenPGP keyring that verifies a suite's Release file before debootstrap runs.

package debroot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// hostKeyring is bookworm's debian-archive-keyring. Its deb12u2 update
// already holds the trixie keys, which sign trixie and (together with the
// bookworm key) sid.
const hostKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// keyringChoice says how debootstrap should check the suite's signature.
type keyringChoice struct {
	args []string // debootstrap arguments: --keyring=K or --no-check-gpg
	how  string   // for progress lines and the root's stamp file
}

// chooseKeyring finds a keyring under which mirror's InRelease for suite has
// a valid signature. Candidates, in order: $BEAM_EXPORTER_DEBIAN_KEYRING,
// the host's keyring, then the debian-archive-keyring of roots already
// built (a newer suite's keyring package knows newer archive keys, and that
// root itself was verified, so trust chains from the host keyring). If none
// verifies and suite is not trixie, the trixie root is built first for its
// keyring. --no-check-gpg is used only when
// BEAM_EXPORTER_DEBOOTSTRAP_NO_CHECK_GPG=1 asks for it.
func chooseKeyring(ctx context.Context, base, suite, mirror string, buildTrixie func() (string, error)) (keyringChoice, error) {
	inRelease, err := fetchInRelease(ctx, mirror, suite)
	if err != nil {
		return keyringChoice{}, err
	}
	f, err := os.CreateTemp("", "erltest-"+suite+"-InRelease-")
	if err != nil {
		return keyringChoice{}, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(inRelease); err != nil {
		f.Close()
		return keyringChoice{}, err
	}
	f.Close()

	var candidates []string
	if k := os.Getenv("BEAM_EXPORTER_DEBIAN_KEYRING"); k != "" {
		candidates = append(candidates, k)
	}
	candidates = append(candidates, hostKeyring)
	others, _ := filepath.Glob(filepath.Join(base, "*", "usr/share/keyrings/debian-archive-keyring.gpg"))
	candidates = append(candidates, others...)

	var tried []string
	try := func(k string) (keyringChoice, bool) {
		if _, err := os.Stat(k); err != nil {
			return keyringChoice{}, false
		}
		tried = append(tried, k)
		if key, ok := verifyWithKeyring(ctx, k, f.Name()); ok {
			return keyringChoice{args: []string{"--keyring=" + k}, how: fmt.Sprintf("keyring %s (valid signature by key %s)", k, key)}, true
		}
		return keyringChoice{}, false
	}
	for _, k := range candidates {
		if c, ok := try(k); ok {
			return c, nil
		}
	}
	if suite != "trixie" && buildTrixie != nil {
		progressf("[%s] no keyring at hand verifies %s's Release; building the trixie root first for its newer debian-archive-keyring", suite, suite)
		if root, err := buildTrixie(); err == nil {
			if c, ok := try(filepath.Join(root, "usr/share/keyrings/debian-archive-keyring.gpg")); ok {
				return c, nil
			}
		} else {
			progressf("[%s] trixie root unavailable: %v", suite, err)
		}
	}
	if os.Getenv("BEAM_EXPORTER_DEBOOTSTRAP_NO_CHECK_GPG") == "1" {
		progressf("[%s] WARNING: no keyring verifies the Release file; building WITHOUT signature checks because BEAM_EXPORTER_DEBOOTSTRAP_NO_CHECK_GPG=1", suite)
		return keyringChoice{args: []string{"--no-check-gpg"}, how: "--no-check-gpg (BEAM_EXPORTER_DEBOOTSTRAP_NO_CHECK_GPG=1)"}, nil
	}
	return keyringChoice{}, fmt.Errorf("no keyring verifies %s/dists/%s/InRelease (tried %s); install a newer debian-archive-keyring, "+
		"point BEAM_EXPORTER_DEBIAN_KEYRING at one, or set BEAM_EXPORTER_DEBOOTSTRAP_NO_CHECK_GPG=1 as a last resort",
		mirror, suite, strings.Join(tried, ", "))
}

// fetchInRelease downloads the suite's clear-signed Release file.
func fetchInRelease(ctx context.Context, mirror, suite string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	u := mirror + "/dists/" + suite + "/InRelease"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// verifyWithKeyring runs gpgv the way debootstrap does: success means at
// least one VALIDSIG, since Release files carry several signatures and
// only one key needs to be known.
func verifyWithKeyring(ctx context.Context, keyring, file string) (string, bool) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "gpgv", "--status-fd", "1", "--keyring", keyring, file)
	cmd.Stdout = &out
	_ = cmd.Run() // the exit status is non-zero when any one signature is unknown
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "[GNUPG:]" && f[1] == "VALIDSIG" {
			return f[2], true
		}
	}
	return "", false
}
