package transport

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migratory/mtcp/internal/syncbuf"

	"github.com/stretchr/testify/require"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
)

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// logBuffer is a concurrency-safe buffer for a test logger.
type logBuffer struct{ syncbuf.Buffer }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// contains waits until the log holds s.
func (b *logBuffer) contains(t *testing.T, s string) { b.containsAfter(t, 0, s) }

// mark returns the log's current length, for containsAfter.
func (b *logBuffer) mark() int { return b.Len() }

// containsAfter waits until the log written after mark holds s.
func (b *logBuffer) containsAfter(t *testing.T, mark int, s string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(b.String()[mark:], s) },
		3*time.Second, 10*time.Millisecond, "log lacks %q:\n%s", s, b.String()[mark:])
}

// startServer starts a Server on 127.0.0.1 with the test key, answering
// "echo" (echoHandler), closed at cleanup.
func startServer(t *testing.T, edit func(*Config)) (*Server, *countingListener) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := &countingListener{Listener: inner}
	cfg := Config{NodeName: "server", Key: testKey}
	if edit != nil {
		edit(&cfg)
	}
	s, err := NewServer(ln, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	s.Handle("echo", echoHandler)
	return s, ln
}

// newClient returns a Client with the test key, closed at cleanup.
func newClient(t *testing.T, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{NodeName: "client", Key: testKey}
	if edit != nil {
		edit(&cfg)
	}
	c, err := NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ctxTimeout returns a context that ends after d, cancelled at cleanup.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// echo is a handler that returns its decoded request.
type echoMsg struct {
	Text string
	N    int
	Data []byte
}

func echoHandler(ctx context.Context, from string, decode func(any) error) (any, error) {
	var m echoMsg
	if err := decode(&m); err != nil {
		return nil, err
	}
	m.Text = from + ":" + m.Text
	m.N++
	return m, nil
}

// idleCount returns the number of idle pooled connections to addr.
func (c *Client) idleCount(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.idle[addr])
}

// openCount returns the number of connections the server holds.
func (s *Server) openCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
