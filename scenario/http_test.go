package scenario

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/testenv"
)

type connKindKey struct{}

// connKind names what the listener handed to the HTTP server: an mtcp
// session or a plain connection.
func connKind(c net.Conn) string {
	if _, ok := c.(*mtcp.Conn); ok {
		return "session"
	}
	return "plain"
}

// startHTTPServer serves on ln:
//
//	GET  /hello           "hello over <session|plain>\n"
//	GET  /data?n=N&seed=S  N pattern bytes
//	POST /sum             "<hex SHA-256 of the body> <length>"
func startHTTPServer(t *testing.T, ln *mtcp.Listener) (stop func()) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s\n", r.Context().Value(connKindKey{}))
	})
	mux.HandleFunc("GET /data", func(w http.ResponseWriter, r *http.Request) {
		n, err1 := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		seed, err2 := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
		if err1 != nil || err2 != nil || n < 0 || n > 64<<20 {
			http.Error(w, "bad n or seed", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		_, _ = io.Copy(w, newPattern(n, seed))
	})
	mux.HandleFunc("POST /sum", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s %d", hex.EncodeToString(h.Sum(nil)), n)
	})
	srv := &http.Server{
		Handler: mux,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKindKey{}, connKind(c))
		},
		ErrorLog:          log.New(testenv.Writer(t), "http: ", 0),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return func() {
		require.NoError(t, srv.Close())
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	}
}

// sessionDialer records the sessions an http.Transport opens, so that a
// test can wait for each to end after closing them.
type sessionDialer struct {
	d     *mtcp.Dialer
	mu    sync.Mutex
	conns []net.Conn
}

func (s *sessionDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := s.d.DialContext(ctx, network, addr)
	if err == nil {
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
	}
	return c, err
}

// closeAll closes the transport's idle connections and waits until every
// session it opened has ended.
func (s *sessionDialer) closeAll(t *testing.T, tr *http.Transport) {
	t.Helper()
	tr.CloseIdleConnections()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.conns, "the transport dialed through mtcp")
	for _, c := range s.conns {
		waitSessionEnd(t, c)
	}
}

// checkHTTP makes GET and POST requests through client and checks every
// body, and that the server saw the expected kind of connection.
func checkHTTP(t *testing.T, client *http.Client, base, wantKind string) {
	t.Helper()
	get := func(path string) []byte {
		t.Helper()
		resp, err := client.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return b
	}
	for i := 0; i < 3; i++ {
		require.Equal(t, "hello over "+wantKind+"\n", string(get("/hello")))
	}
	const n = 1 << 20
	sum := sha256.Sum256(get(fmt.Sprintf("/data?n=%d&seed=3", n)))
	require.Equal(t, digestOf(n, 3), sum[:], "GET body")

	resp, err := client.Post(base+"/sum", "application/octet-stream", newPattern(n, 4))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%s %d", hex.EncodeToString(digestOf(n, 4)), n), string(b), "POST body as the server read it")
}

// checkCurl fetches and posts with the curl command, a client that knows
// nothing of mtcp.
func checkCurl(t *testing.T, base string, extra ...string) {
	t.Helper()
	curl := testenv.Command(t, "curl", "curl")
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, curl, append(append([]string{"-sS", "--fail", "--max-time", "15"}, extra...), args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "curl %v: %s", args, stderr.String())
		return out
	}
	require.Equal(t, "hello over plain\n", string(run(base+"/hello")))
	const n = 1 << 20
	sum := sha256.Sum256(run(fmt.Sprintf("%s/data?n=%d&seed=5", base, n)))
	require.Equal(t, digestOf(n, 5), sum[:], "GET body through curl")

	body := filepath.Join(t.TempDir(), "body")
	f, err := os.Create(body)
	require.NoError(t, err)
	_, err = io.Copy(f, newPattern(n, 6))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	got := run("--data-binary", "@"+body, "-H", "Content-Type: application/octet-stream", base+"/sum")
	require.Equal(t, fmt.Sprintf("%s %d", hex.EncodeToString(digestOf(n, 6)), n), string(got), "POST body through curl")
}

// TestHTTPOverListener serves HTTP on an mtcp listener to three kinds of
// clients at once: an http.Client dialing mtcp sessions, a plain
// http.Client, and curl.
func TestHTTPOverListener(t *testing.T) {
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", &mtcp.Config{Logger: testLogger(t)})
	require.NoError(t, err)
	stop := startHTTPServer(t, ln)
	defer stop()
	base := "http://" + ln.Addr().String()

	t.Run("mtcp client", func(t *testing.T) {
		sd := &sessionDialer{d: &mtcp.Dialer{Logger: testLogger(t)}}
		tr := &http.Transport{DialContext: sd.DialContext}
		checkHTTP(t, &http.Client{Transport: tr, Timeout: 20 * time.Second}, base, "session")
		sd.closeAll(t, tr)
	})
	t.Run("plain client", func(t *testing.T) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		checkHTTP(t, &http.Client{Transport: tr, Timeout: 20 * time.Second}, base, "plain")
	})
	t.Run("curl", func(t *testing.T) {
		checkCurl(t, base)
	})
	require.Equal(t, 0, ln.Sessions(), "no session is left once its client closed it")
}

// TestHTTPSOverListener does the same over TLS: the listener runs TLS
// (Config.TLS) and finds mtcp sessions and plain HTTPS clients inside it.
func TestHTTPSOverListener(t *testing.T) {
	serverTLS, clientTLS, certPEM := tlsConfigs(t)
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", &mtcp.Config{TLS: serverTLS, Logger: testLogger(t)})
	require.NoError(t, err)
	stop := startHTTPServer(t, ln)
	defer stop()
	base := "https://" + ln.Addr().String()

	t.Run("mtcp client", func(t *testing.T) {
		// The mtcp.Dialer runs TLS itself, so it dials the https:// URLs.
		sd := &sessionDialer{d: &mtcp.Dialer{TLS: clientTLS, Logger: testLogger(t)}}
		tr := &http.Transport{DialTLSContext: sd.DialContext}
		checkHTTP(t, &http.Client{Transport: tr, Timeout: 20 * time.Second}, base, "session")
		sd.closeAll(t, tr)
	})
	t.Run("plain TLS client", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: clientTLS}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		checkHTTP(t, client, base, "plain")
		resp, err := client.Get(base + "/hello")
		require.NoError(t, err)
		resp.Body.Close()
		require.NotNil(t, resp.TLS, "the response came over TLS")
	})
	t.Run("plain client without TLS is refused", func(t *testing.T) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		_, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get("http://" + ln.Addr().String() + "/hello")
		require.Error(t, err)
		var ue interface{ Timeout() bool }
		require.False(t, errors.As(err, &ue) && ue.Timeout(), "refused, not timed out: %v", err)
	})
	t.Run("curl", func(t *testing.T) {
		ca := filepath.Join(t.TempDir(), "ca.pem")
		require.NoError(t, os.WriteFile(ca, certPEM, 0o600))
		checkCurl(t, base, "--cacert", ca)
	})
	require.Equal(t, 0, ln.Sessions(), "no session is left once its client closed it")
}

// TestHTTPSWithH2InTLSConfig serves HTTPS with a tls.Config that offers
// HTTP/2 by ALPN, as configurations made for http.Server usually do
// (golang.org/x/crypto/acme/autocert's among them). A plain HTTPS client
// then agrees on "h2" in the TLS handshake, but http.Server only serves
// HTTP/2 on a *tls.Conn, and the listener hands it a wrapped connection:
// the server answers HTTP/1.1 to a client speaking HTTP/2, and every request
// fails.
func TestHTTPSWithH2InTLSConfig(t *testing.T) {
	serverTLS, clientTLS, _ := tlsConfigs(t)
	serverTLS = serverTLS.Clone()
	serverTLS.NextProtos = []string{"h2", "http/1.1"}
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", &mtcp.Config{TLS: serverTLS, Logger: testLogger(t)})
	require.NoError(t, err)
	stop := startHTTPServer(t, ln)
	defer stop()
	tr := &http.Transport{TLSClientConfig: clientTLS, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	checkHTTP(t, &http.Client{Transport: tr, Timeout: 20 * time.Second}, "https://"+ln.Addr().String(), "plain")
}
