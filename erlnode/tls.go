// TLS distribution settings: the exporter's side of inet_tls_dist.

package erlnode

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles names what the exporter needs to reach a node started with
// -proto_dist inet_tls: the CA that signed the node's certificate, and the
// exporter's own certificate when the node wants one (verify_peer with
// fail_if_no_peer_cert, as it should).
type TLSFiles struct {
	CAFile   string // PEM bundle; empty means the system's roots
	CertFile string // PEM certificate presented to the node
	KeyFile  string // its private key
	// ServerName is checked against the node's certificate; empty means
	// the host part of the node's name.
	ServerName string
	// InsecureSkipVerify accepts any certificate: for tests, never production.
	InsecureSkipVerify bool
}

// Config loads the files. Errors name the file and what is wrong with it.
func (f TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify,
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate", f.CAFile)
		}
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("a TLS certificate and its key go together: give both files or neither")
	}
	return cfg, nil
}

// TrustsSystemRoots reports whether cfg, a TLS distribution setting, checks
// the node's certificate against the system's roots rather than a CA of the
// operator's: any publicly issued certificate for the node's host then
// passes.
func TrustsSystemRoots(cfg *tls.Config) bool {
	return cfg != nil && cfg.RootCAs == nil && !cfg.InsecureSkipVerify
}
