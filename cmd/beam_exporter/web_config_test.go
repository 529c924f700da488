// /metrics behind TLS and basic auth through --web.config.file, checked with a real TLS client.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestWebConfigTLSAndBasicAuth needs no node: /metrics answers beam_up 0
// while the target cannot be reached, which is enough to see who gets it.
func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	certFile, keyFile := writeServerCert(t, dir, ca, caKey)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, []byte("tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+
		"\nbasic_auth_users:\n  alice: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	addr := freePort(t)
	var logs lockedBuffer
	cmd := exec.Command(binary, "--erlang.node=nobody_here@127.0.0.1", "--web.listen-address="+addr,
		"--web.config.file="+webConfig)
	cmd.Env = append(withoutCookieEnv(), "BEAM_EXPORTER_ERLANG_COOKIE=web-config-test")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	client := &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
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
			if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || resp.TLS.PeerCertificates[0].Subject.CommonName != "beam_exporter test server" {
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

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "beam_exporter test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

// writeServerCert issues a certificate for 127.0.0.1 and writes it and its
// key as PEM files.
func writeServerCert(t *testing.T, dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "beam_exporter test server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	for file, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}
