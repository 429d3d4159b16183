package scenario

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/migratory/mtcp"
)

// TestTLSEchoSurvivesResets echoes 4 MiB both ways over TLS through a proxy
// that resets the connection after every 512 KiB echoed: every resume runs a
// new TLS handshake, and the bytes still arrive once and in order.
func TestTLSEchoSurvivesResets(t *testing.T) {
	serverTLS, clientTLS, _ := tlsConfigs(t)
	srv := listenEcho(t, &mtcp.Config{TLS: serverTLS, Logger: testLogger(t)})
	defer srv.Stop()
	px := newProxy(t, srv.Addr())
	defer px.Close()

	// The certificate names 127.0.0.1, the host of the proxy's address, so
	// the default ServerName (the dialed host) verifies. A window smaller
	// than the distance between cuts means that the client cannot read up to
	// the next cut from bytes buffered before the last one: every cut finds
	// a link to break.
	d := &mtcp.Dialer{
		TLS: clientTLS, Logger: testLogger(t), Window: 256 << 10,
		KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: time.Second,
	}
	c, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)
	const n, every = 4 << 20, 512 << 10
	cut, cuts := px.ResetEvery(every)
	res := echoTransfer(c, n, 7, cut)
	// Both ends have ended their output (the echo server closes once it has
	// echoed everything), so the session ends by itself. Close after that:
	// a Close that races the acknowledgement of the server's CLOSE makes the
	// session linger (TestCloseAfterPeerCloseEnds).
	waitSessionEnd(t, c)
	require.NoError(t, c.Close())
	requireTransferOK(t, res, n, 7, srv.Digest(t))
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
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", &mtcp.Config{TLS: serverTLS, DetachTimeout: time.Second, Logger: testLogger(t)})
	require.NoError(t, err)
	defer ln.Close()
	d := &mtcp.Dialer{TLS: clientTLS, ResumeTimeout: time.Second, Logger: testLogger(t)}
	makePipe, ended := pipeMaker(t, ln, d, ln.Addr().String())
	nettest.TestConn(t, makePipe)
	ended()
	require.Eventually(t, func() bool { return ln.Sessions() == 0 }, 5*time.Second, 10*time.Millisecond,
		"every server session ended")
}
