package erlnode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/beam-exporter/beam_exporter/erlnode/erltest"
)

func TestTLSFilesConfig(t *testing.T) {
	dir := t.TempDir()
	ca := erltest.NewCA(t, dir)
	cert, key := ca.Issue(t, "exporter", "localhost")
	for _, tc := range []struct {
		name  string
		files TLSFiles
		ok    bool
	}{
		{"CA and a key pair", TLSFiles{CAFile: ca.CertFile, CertFile: cert, KeyFile: key}, true},
		{"system roots", TLSFiles{}, true},
		{"missing CA file", TLSFiles{CAFile: dir + "/nope.pem"}, false},
		{"CA file without PEM", TLSFiles{CAFile: key + "x"}, false},
		{"certificate without key", TLSFiles{CertFile: cert}, false},
		{"key without certificate", TLSFiles{KeyFile: key}, false},
		{"key that does not match", TLSFiles{CertFile: ca.CertFile, KeyFile: key}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.files.Config()
			if (err == nil) != tc.ok {
				t.Errorf("Config() error = %v, want ok = %v", err, tc.ok)
			}
		})
	}
}

// TestLiveTLSDistribution connects to nodes started with -proto_dist inet_tls
// that demand a client certificate.
func TestLiveTLSDistribution(t *testing.T) {
	for _, otp := range erltest.Releases() {
		t.Run("OTP"+otp, func(t *testing.T) {
			t.Parallel()
			args, ca := erltest.TLSDistArgs(t, otp)
			node := erltest.Start(t, erltest.Options{OTP: otp, Name: erltest.UniqueName("tls"), Args: args})
			cert, key := ca.Issue(t, "exporter", "exporter")
			other := erltest.NewCA(t, t.TempDir())

			for _, tc := range []struct {
				name   string
				tls    *tls.Config
				reason string // "" when the connection must work
			}{
				{"plain distribution", nil, ReasonProtocol},
				{"no client certificate", mustTLS(t, TLSFiles{CAFile: ca.CertFile}), ReasonTLS},
				{"node certificate from an unknown CA", mustTLS(t, TLSFiles{CAFile: other.CertFile, CertFile: cert, KeyFile: key}), ReasonTLS},
				{"TLS with a client certificate", mustTLS(t, TLSFiles{CAFile: ca.CertFile, CertFile: cert, KeyFile: key}), ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					client, err := New(Config{Target: node.Name, Cookie: node.Cookie, TLS: tc.tls})
					if err != nil {
						t.Fatal(err)
					}
					defer client.Close()
					ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
					defer cancel()
					err = client.EnsureConnected(ctx)
					if tc.reason != "" {
						if err == nil {
							t.Fatal("connected")
						}
						if got := client.ConnectionErrors()[tc.reason]; got != 1 {
							t.Errorf("error %q counted as %v, want reason %s", err, client.ConnectionErrors(), tc.reason)
						}
						return
					}
					if err != nil {
						t.Fatalf("%v\n%s", err, node.Output())
					}
					got, err := client.Call(ctx, "erlang", "node")
					if err != nil || got != etf.Atom(node.Name) {
						t.Fatalf("erlang:node() = %v, %v", got, err)
					}
				})
			}
		})
	}
}

func mustTLS(t *testing.T, f TLSFiles) *tls.Config {
	t.Helper()
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestTrustsSystemRoots(t *testing.T) {
	pool := x509.NewCertPool()
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		want bool
	}{
		{"plain distribution", nil, false},
		{"no CA given", &tls.Config{}, true},
		{"a private CA", &tls.Config{RootCAs: pool}, false},
		{"no verification at all (tests)", &tls.Config{InsecureSkipVerify: true}, false},
	} {
		if got := TrustsSystemRoots(tc.cfg); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
