package mtcp

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

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// testCert is a self-signed ECDSA certificate for localhost and 127.0.0.1.
type testCert struct {
	cert tls.Certificate
	pool *x509.CertPool
	pem  []byte
}

var (
	testCertOnce sync.Once
	testCertVal  testCert
	testCertErr  error
)

func makeTestCert() (testCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testCert{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return testCert{}, err
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
		return testCert{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return testCert{}, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return testCert{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pool: pool,
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// tlsConfigs returns a server configuration with a self-signed certificate
// and a client configuration that trusts it.
func tlsConfigs(t testing.TB) (server, client *tls.Config, certPEM []byte) {
	t.Helper()
	testCertOnce.Do(func() { testCertVal, testCertErr = makeTestCert() })
	require.NoError(t, testCertErr)
	server = &tls.Config{Certificates: []tls.Certificate{testCertVal.cert}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: testCertVal.pool, MinVersion: tls.VersionTLS12}
	return server, client, testCertVal.pem
}

// TestTLSEchoSurvivesResets echoes 4 MiB both ways over TLS through a proxy
// that resets the connection after every 512 KiB echoed: every resume runs a
// new TLS handshake, and the bytes still arrive once and in order.
func TestTLSEchoSurvivesResets(t *testing.T) {
	serverTLS, clientTLS, _ := tlsConfigs(t)
	srv := listenEcho(t, &Config{TLS: serverTLS, Logger: testLogger(t)})
	defer srv.stop()
	px := newProxy(t, srv.addr())
	defer px.Close()

	// The certificate names 127.0.0.1, the host of the proxy's address, so
	// the default ServerName (the dialed host) verifies. A window smaller
	// than the distance between cuts means that the client cannot read up to
	// the next cut from bytes buffered before the last one: every cut finds
	// a link to break.
	d := &Dialer{
		TLS: clientTLS, Logger: testLogger(t), Window: 256 << 10,
		KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: time.Second,
	}
	c, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)
	const n, every = 4 << 20, 512 << 10
	cut, cuts := resetEvery(px, every)
	res := echoTransfer(c, n, 7, cut)
	// Both ends have ended their output (the echo server closes once it has
	// echoed everything), so the session ends by itself. Close after that:
	// a Close that races the acknowledgement of the server's CLOSE makes the
	// session linger (TestCloseAfterPeerCloseEnds).
	waitSessionEnd(t, c)
	require.NoError(t, c.Close())
	requireTransferOK(t, res, n, 7, srv.digest(t))
	require.GreaterOrEqual(t, cuts.Load(), int32(n/every-1), "the path was cut after every 512 KiB")
	t.Logf("%d cuts, %d connections reset", cuts.Load(), px.Resets())
}

// TestNettestTLS runs the net.Conn conformance suite over sessions whose
// links are TLS connections, then checks that every session ended.
func TestNettestTLS(t *testing.T) {
	serverTLS, clientTLS, _ := tlsConfigs(t)
	// Sessions closed with bytes still in flight stay until the client's
	// resume timeout or the server's detach timeout has passed
	// (TestServerCloseWithClientBytesInFlight): keep both short so that they
	// are gone before the leak check.
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{TLS: serverTLS, DetachTimeout: time.Second, Logger: testLogger(t)})
	require.NoError(t, err)
	defer ln.Close()
	d := &Dialer{TLS: clientTLS, ResumeTimeout: time.Second, Logger: testLogger(t)}
	makePipe, ended := pipeMaker(t, ln, d, ln.Addr().String())
	nettest.TestConn(t, makePipe)
	ended()
	require.Eventually(t, func() bool { return ln.Sessions() == 0 }, 5*time.Second, 10*time.Millisecond,
		"every server session ended")
}
