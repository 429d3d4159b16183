package mtcphttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/migratory/mtcp"
)

// Server serves an http.Server on an mtcp.Listener so that its HTTP/1.x
// keep-alive connections move between the pool's members.
type Server struct {
	srv      *http.Server
	ln       *mtcp.Listener
	http2    bool // the server may speak HTTP/2 without TLS (h2c)
	shutdown atomic.Bool
}

// New makes srv's HTTP/1.x keep-alive connections on ln movable: srv's
// ConnState hook (the one it had is still called, after) checkpoints each
// mtcp session with nil state whenever it sits between two requests with
// nothing of the next one read, so that a drain, balancing, a move asked by
// the client or a failover resumes the connection on another member at a
// request boundary. Serve then serves srv on ln. Set srv's other fields
// before calling New; do not change ConnState after it.
func New(srv *http.Server, ln *mtcp.Listener) *Server {
	s := &Server{srv: srv, ln: ln}
	if p := srv.Protocols; p != nil && p.UnencryptedHTTP2() {
		s.http2 = true
	}
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, state http.ConnState) {
		if tc, ok := c.(*conn); ok {
			tc.stateChanged(state, s.http2)
		}
		if next != nil {
			next(c, state)
		}
	}
	return s
}

// Serve accepts connections on the listener and serves them, as
// http.Server.Serve does; each mtcp session is followed so that it can
// move. After Shutdown or Close it returns http.ErrServerClosed.
func (s *Server) Serve() error {
	err := s.srv.Serve(listener{s.ln})
	if s.shutdown.Load() && errors.Is(err, net.ErrClosed) {
		return http.ErrServerClosed
	}
	return err
}

// Shutdown moves the member's connections to other members of the pool
// instead of closing them, as a deploy wants: it drains the listener
// (mtcp.Listener.Drain; each session goes when it sits between requests,
// or after the listener's Config.SettleTimeout), then shuts the http.Server
// down (http.Server.Shutdown), which closes the plain connections of
// clients that do not speak mtcp once they are idle. Sessions that cannot
// move (HTTP/2, hijacked connections such as WebSockets) are waited for
// until they end or ctx ends. It returns the drain's error joined with the
// shutdown's.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	err := s.ln.Drain(ctx)
	return errors.Join(err, s.srv.Shutdown(ctx))
}

// Close closes the listener and every connection at once, as
// http.Server.Close does: the member's sessions end, they do not move.
func (s *Server) Close() error {
	s.shutdown.Store(true)
	return s.srv.Close()
}

// Session returns the mtcp session under a connection that an http.Server
// served by this package hands to its hooks (ConnState, ConnContext), or
// nil for a plain connection (a client that does not speak mtcp).
func Session(c net.Conn) *mtcp.Conn {
	switch c := c.(type) {
	case *conn:
		return c.Conn
	case *mtcp.Conn:
		return c
	}
	return nil
}

// listener wraps the mtcp sessions it accepts for the Server.
type listener struct{ ln *mtcp.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	if mc, ok := c.(*mtcp.Conn); ok {
		return &conn{Conn: mc}, nil
	}
	return c, nil
}

// Close closes the mtcp listener; closing it again is not an error (a
// drain closes it before the http.Server shuts down).
func (l listener) Close() error {
	if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

func (l listener) Addr() net.Addr { return l.ln.Addr() }
