package scenario

import (
	"crypto/tls"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/faultproxy"
	"github.com/migratory/mtcp/internal/testcert"
	"github.com/migratory/mtcp/internal/testenv"
	"github.com/migratory/mtcp/internal/transfer"
)

// testPoolKey is the pool key of the member processes.
var testPoolKey = []byte("0123456789abcdef0123456789abcdef")

func newPattern(n int64, seed uint64) *transfer.Pattern { return transfer.NewPattern(n, seed) }

func digestOf(n int64, seed uint64) []byte { return transfer.Digest(n, seed) }

// echoTransfer writes n pattern bytes to c while reading everything c
// returns, and returns the digests of both directions.
func echoTransfer(c net.Conn, n int64, seed uint64, onProgress func(int64)) transfer.Result {
	return transfer.Echo(c.(*mtcp.Conn), newPattern(n, seed), onProgress)
}

// echoPaced is echoTransfer with the client writing at about rate bytes/s.
func echoPaced(c net.Conn, n int64, seed uint64, rate float64, onProgress func(int64)) transfer.Result {
	return transfer.Echo(c.(*mtcp.Conn), transfer.NewPaced(newPattern(n, seed), rate), onProgress)
}

// requireTransferOK checks an echo transfer (transfer.RequireEcho).
func requireTransferOK(t *testing.T, res transfer.Result, n int64, seed uint64, serverDigest []byte) {
	t.Helper()
	transfer.RequireEcho(t, res, n, seed, serverDigest)
}

// waitSessionEnd waits until a session has ended (after Close, once its
// last bytes are delivered).
func waitSessionEnd(t testing.TB, c net.Conn) {
	t.Helper()
	select {
	case <-c.(*mtcp.Conn).Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("session %s did not end: %+v", c.(*mtcp.Conn).SessionID(), c.(*mtcp.Conn).Status())
	}
}

// dialPool opens a session at addr with d (nil: a default Dialer) and
// waits until its client knows the n members of the pool.
func dialPool(t testing.TB, d *mtcp.Dialer, addr string, n int) *mtcp.Conn {
	t.Helper()
	if d == nil {
		d = &mtcp.Dialer{Logger: testLogger(t)}
	}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	mc := c.(*mtcp.Conn)
	require.Eventually(t, func() bool { return len(mc.Members()) == n }, 5*time.Second, 5*time.Millisecond)
	return mc
}

// testLogger is the logger tests give mtcp (see testenv.Logger).
func testLogger(t testing.TB) *slog.Logger { return testenv.Logger(t) }

// tlsConfigs returns the tests' server and client TLS configurations (see
// testcert.Configs).
func tlsConfigs(t testing.TB) (server, client *tls.Config, certPEM []byte) {
	return testcert.Configs(t)
}

// listenEcho listens on loopback with cfg (nil: the defaults) and serves
// the echo server there.
func listenEcho(t *testing.T, cfg *mtcp.Config) *transfer.Server {
	t.Helper()
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	return transfer.Serve(ln, t.Logf, nil)
}

// newProxy starts a fault proxy in front of target.
func newProxy(t testing.TB, target string) *faultproxy.Proxy {
	t.Helper()
	px, err := faultproxy.New(target)
	require.NoError(t, err)
	return px
}
