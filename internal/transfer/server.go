package transfer

import (
	"crypto/sha256"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Server echoes every connection a listener accepts, hashing what it reads:
// the SHA-256 of each connection's input, once the peer ended it and took
// the echo, arrives for Digest.
type Server struct {
	ln      net.Listener
	digests chan []byte
	wg      sync.WaitGroup
}

// Serve starts echoing the connections ln accepts, until Stop. logf (if not
// nil) reports an echo that failed; track (if not nil) is called with each
// connection when it is accepted (open) and when its echo ends.
func Serve(ln net.Listener, logf func(format string, args ...any), track func(c net.Conn, open bool)) *Server {
	s := &Server{ln: ln, digests: make(chan []byte, 100)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go s.echo(c, logf, track)
		}
	}()
	return s
}

func (s *Server) echo(c net.Conn, logf func(string, ...any), track func(net.Conn, bool)) {
	defer s.wg.Done()
	if track != nil {
		track(c, true)
		defer track(c, false)
	}
	defer c.Close()
	h := sha256.New()
	if _, err := io.Copy(c, io.TeeReader(c, h)); err != nil {
		if logf != nil {
			logf("echo server: %v", err)
		}
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	// Wait for the peer's close, so that the echo is delivered.
	_, _ = io.Copy(io.Discard, c)
	s.digests <- h.Sum(nil)
}

// Digest waits up to 10 s for the input digest of the next connection the
// server finished, and fails t if none came.
func (s *Server) Digest(t testing.TB) []byte {
	t.Helper()
	select {
	case d := <-s.digests:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the echo server finished no connection in 10 s")
		return nil
	}
}

// Addr is the address the server's listener accepts on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stop closes the listener and waits for every echo to end.
func (s *Server) Stop() {
	_ = s.ln.Close()
	s.wg.Wait()
}
