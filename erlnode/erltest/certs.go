// A throwaway certificate authority for tests of TLS, on the web side and on
// the distribution side.

package erltest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// CA issues certificates valid for an hour, written as PEM files.
type CA struct {
	Cert     *x509.Certificate
	CertFile string // the CA certificate, PEM
	Pool     *x509.CertPool

	key    *ecdsa.PrivateKey
	dir    string
	serial atomic.Int64
}

// NewCA creates a CA whose files go to dir.
func NewCA(t testing.TB, dir string) *CA {
	t.Helper()
	key := newKey(t)
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
		t.Fatalf("erltest: CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("erltest: CA: %v", err)
	}
	ca := &CA{Cert: cert, CertFile: filepath.Join(dir, "ca.pem"), Pool: x509.NewCertPool(), key: key, dir: dir}
	ca.Pool.AddCert(cert)
	ca.serial.Store(1)
	writePEM(t, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// Issue writes name.pem and name-key.pem, a certificate for hosts (DNS
// names or IP addresses) that serves as both server and client.
func (ca *CA) Issue(t testing.TB, name string, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("erltest: issuing %s: %v", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("erltest: issuing %s: %v", name, err)
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("erltest: key: %v", err)
	}
	return key
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("erltest: %v", err)
	}
}

// TLSDistArgs prepares TLS distribution for a node of release otp: a CA, a
// certificate for this host, and an ssl_dist_optfile in which the node, as
// server and as client, demands a certificate signed by that CA. It returns
// the erl arguments that switch the node to inet_tls, and the CA, whose
// files the test may use from the host.
func TLSDistArgs(t testing.TB, otp string) (args []string, ca *CA) {
	t.Helper()
	root := rootFor(t, otp)
	// Inside a root, the node sees the files under /tmp; they are removed
	// with the test.
	inNode := filepath.Join("/tmp", "erltest-tls-"+randomHex(8))
	dir := filepath.Join(root, inNode)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("erltest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	host, err := os.Hostname()
	if err != nil {
		t.Fatalf("erltest: %v", err)
	}
	short, _, _ := strings.Cut(host, ".")
	ca = NewCA(t, dir)
	ca.Issue(t, "node", short, host, "localhost", "127.0.0.1")
	side := fmt.Sprintf(`[{certfile, "%[1]s/node.pem"}, {keyfile, "%[1]s/node-key.pem"}, {cacertfile, "%[1]s/ca.pem"}, {verify, verify_peer}`, inNode)
	opts := fmt.Sprintf("[{server, %s, {fail_if_no_peer_cert, true}]},\n {client, %s]}].\n", side, side)
	if err := os.WriteFile(filepath.Join(dir, "dist.conf"), []byte(opts), 0o600); err != nil {
		t.Fatalf("erltest: %v", err)
	}
	return []string{"-proto_dist", "inet_tls", "-ssl_dist_optfile", filepath.Join(inNode, "dist.conf")}, ca
}
