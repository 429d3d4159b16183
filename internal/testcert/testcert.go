// Package testcert makes the self-signed certificate of the tests: ECDSA
// P-256, for localhost, 127.0.0.1 and ::1, valid from an hour ago for a
// day, made once per test binary.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

type cert struct {
	cert tls.Certificate
	pool *x509.CertPool
	pem  []byte
}

var (
	once    sync.Once
	made    cert
	madeErr error
)

func makeCert() (cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cert{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return cert{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mtcp test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return cert{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return cert{}, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return cert{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pool: pool,
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// Configs returns TLS configurations of a server presenting the test
// certificate and of a client trusting it, and the certificate in PEM (for
// curl's --cacert).
func Configs(t testing.TB) (server, client *tls.Config, certPEM []byte) {
	t.Helper()
	once.Do(func() { made, madeErr = makeCert() })
	if madeErr != nil {
		t.Fatalf("making the test certificate: %v", madeErr)
	}
	server = &tls.Config{Certificates: []tls.Certificate{made.cert}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: made.pool, MinVersion: tls.VersionTLS12}
	return server, client, made.pem
}
