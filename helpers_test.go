package mtcp

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/faultproxy"
	"github.com/migratory/mtcp/internal/testcert"
	"github.com/migratory/mtcp/internal/testenv"
	"github.com/migratory/mtcp/internal/transfer"
)

// echoServer echoes the sessions ln accepts (transfer.Server), keeping
// each in debugConns while it runs.
type echoServer struct {
	*transfer.Server
	ln *Listener
}

func startEchoServer(t *testing.T, ln *Listener) *echoServer {
	track := func(c net.Conn, open bool) {
		if open {
			debugConns.Store(c, true)
		} else {
			debugConns.Delete(c)
		}
	}
	return &echoServer{Server: transfer.Serve(ln, t.Logf, track), ln: ln}
}

func newPattern(n int64, seed uint64) *transfer.Pattern { return transfer.NewPattern(n, seed) }

// transferResult is what an echo transfer sent and read back.
type transferResult = transfer.Result

// echoTransfer writes n pattern bytes to c while reading everything c
// returns, and returns the digests of both directions. onProgress is
// called with the number of bytes read back so far.
func echoTransfer(c net.Conn, n int64, seed uint64, onProgress func(int64)) transferResult {
	return echoTransferFrom(c, newPattern(n, seed), onProgress)
}

// echoTransferFrom is echoTransfer with the bytes to send read from src;
// a transfer stuck for 30 s prints the state of the sessions involved.
func echoTransferFrom(c net.Conn, src io.Reader, onProgress func(int64)) transferResult {
	stuck := time.AfterFunc(30*time.Second, func() {
		fmt.Println("TRANSFER STUCK: client:", c.(*Conn).debugState())
		debugConns.Range(func(k, _ any) bool {
			if sc, ok := k.(*Conn); ok {
				fmt.Println("TRANSFER STUCK: server:", sc.debugState())
			}
			return true
		})
	})
	defer stuck.Stop()
	return transfer.Echo(c.(*Conn), src, onProgress)
}

func digestOf(n int64, seed uint64) []byte { return transfer.Digest(n, seed) }

// debugConns holds the server ends of test sessions, to describe them when
// a transfer is stuck.
var debugConns sync.Map

// requireTransferOK checks an echo transfer (transfer.RequireEcho).
func requireTransferOK(t *testing.T, res transfer.Result, n int64, seed uint64, serverDigest []byte) {
	t.Helper()
	transfer.RequireEcho(t, res, n, seed, serverDigest)
}

// testLogger is the logger tests give mtcp (see testenv.Logger).
func testLogger(t testing.TB) *slog.Logger { return testenv.Logger(t) }

// waitSessionEnd waits until a session has ended in the background (after
// Close, its last bytes delivered), so leak checks see no goroutines.
func waitSessionEnd(t testing.TB, c net.Conn) {
	t.Helper()
	select {
	case <-c.(*Conn).Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("session %s did not end: %s", c.(*Conn).SessionID(), c.(*Conn).debugState())
	}
}

// listenEcho listens on loopback with cfg (nil: the defaults) and serves
// the echo server there, stopped at cleanup (and by Stop).
func listenEcho(t *testing.T, cfg *Config) *echoServer {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	srv := startEchoServer(t, ln)
	t.Cleanup(srv.Stop)
	return srv
}

// newProxy starts a fault proxy in front of target.
func newProxy(t testing.TB, target string) *faultproxy.Proxy {
	t.Helper()
	px, err := faultproxy.New(target)
	require.NoError(t, err)
	return px
}

// dialHonest opens a session to addr as an honest client does.
func dialHonest(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := (&Dialer{Logger: testLogger(t)}).Dial("tcp", addr)
	require.NoError(t, err)
	return c
}

// listenBehindProxy listens on loopback with cfg (nil: the defaults) and
// starts a fault proxy in front of the listener.
func listenBehindProxy(t testing.TB, cfg *Config) (*Listener, *faultproxy.Proxy) {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	return ln, newProxy(t, ln.Addr().String())
}

// acceptDialed opens a session to addr with d and returns its client end
// and the server end that ln accepted.
func acceptDialed(t testing.TB, ln *Listener, d *Dialer, addr string) (c, sc net.Conn) {
	t.Helper()
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	sc, err = ln.Accept()
	require.NoError(t, err)
	return c, sc
}

// listenEchoHonest is listenEcho with an honest session open on the echo
// server.
func listenEchoHonest(t *testing.T, cfg *Config) (*echoServer, net.Conn) {
	t.Helper()
	srv := listenEcho(t, cfg)
	return srv, dialHonest(t, srv.Addr())
}

// tlsConfigs returns the tests' server and client TLS configurations (see
// testcert.Configs).
func tlsConfigs(t testing.TB) (server, client *tls.Config, certPEM []byte) {
	return testcert.Configs(t)
}

// closeWithLastWords writes "last words" on c and closes it: its peer sc
// reads them, then the end of the stream.
func closeWithLastWords(t *testing.T, c, sc net.Conn) {
	t.Helper()
	_, err := c.Write([]byte("last words"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	got, err := io.ReadAll(sc)
	require.NoError(t, err)
	require.Equal(t, "last words", string(got))
}
