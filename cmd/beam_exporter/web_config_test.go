// /metrics behind TLS and basic auth through --web.config.file, checked with a real TLS client.

package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
	"github.com/beam-exporter/beam_exporter/erlnode/erltest/testkit"
)

// TestWebConfigTLSAndBasicAuth needs no node: /metrics answers beam_up 0
// while the target cannot be reached, which is enough to see who gets it.
func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	ca := erltest.NewCA(t, dir)
	certFile, keyFile := ca.Issue(t, "server", "127.0.0.1")
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, []byte("tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+
		"\nbasic_auth_users:\n  alice: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	addr := testkit.FreeAddr(t)
	var logs testkit.LockedBuffer
	cmd := exec.Command(binary, "--erlang.node=nobody_here@127.0.0.1", "--web.listen-address="+addr,
		"--web.config.file="+webConfig)
	cmd.Env = append(withoutCookieEnv(), "BEAM_EXPORTER_ERLANG_COOKIE=web-config-test")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	client := &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}},
	}
	url := "https://" + addr + "/metrics"
	get := func(c *http.Client, url, user, password string) (*http.Response, string, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body), nil
	}

	// The right credentials: wait for the server, then the metrics.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body, err := get(client, url, "alice", "s3cret")
		if err == nil {
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "\nbeam_up 0") {
				t.Fatalf("right credentials: %s, want 200 with beam_up 0; body:\n%.500s", resp.Status, body)
			}
			if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || resp.TLS.PeerCertificates[0].Subject.CommonName != "server" {
				t.Fatalf("the answer did not come over TLS with the test's certificate: %+v", resp.TLS)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer over TLS within 30s: %v\nlogs:\n%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "alice", "wrong"},
		{"unknown user", "mallory", "s3cret"},
		{"no credentials", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := get(client, url, tc.user, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "beam_up") {
				t.Fatalf("%s, want 401 and no metrics; body:\n%.500s", resp.Status, body)
			}
		})
	}

	t.Run("plain HTTP", func(t *testing.T) {
		resp, body, err := get(&http.Client{Timeout: 15 * time.Second}, "http://"+addr+"/metrics", "alice", "s3cret")
		if err == nil && (resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "beam_up")) {
			t.Fatalf("plain HTTP got %s, want 400 or a refused connection; body:\n%.500s", resp.Status, body)
		}
	})

	t.Run("client that does not trust the CA", func(t *testing.T) {
		_, _, err := get(&http.Client{Timeout: 15 * time.Second}, url, "alice", "s3cret")
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("got %v, want an unknown authority error", err)
		}
	})

	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("the password appears in the logs:\n%s", logs.String())
	}
}
