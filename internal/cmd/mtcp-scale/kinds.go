package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp/internal/parallel"

	"github.com/hashicorp/yamux"

	"github.com/migratory/mtcp"
)

// The transports compared.
const (
	kindTCP          = "tcp"           // a TCP connection
	kindMTCP         = "mtcp"          // an mtcp session on a standalone listener
	kindYamuxSession = "yamux-session" // a yamux stream in a session of its own, over its own TCP connection
	kindYamuxStream  = "yamux-stream"  // a yamux stream, all in one session over one TCP connection
)

var allKinds = []string{kindTCP, kindMTCP, kindYamuxSession, kindYamuxStream}

func yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	return c
}

// server accepts connections of one kind on loopback and holds them, or
// hands each to a handler in a goroutine of its own.
type server struct {
	kind     string
	ln       net.Listener
	handle   func(net.Conn)
	accepted atomic.Int64

	mu       sync.Mutex
	held     []net.Conn
	sessions []*yamux.Session
	wg       sync.WaitGroup
}

// startServer listens for kind; handle nil holds what it accepts.
func startServer(kind string, handle func(net.Conn)) (*server, error) {
	s := &server{kind: kind, handle: handle}
	var err error
	if kind == kindMTCP {
		s.ln, err = mtcp.Listen("tcp", "127.0.0.1:0", nil)
	} else {
		s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("listening for %s: %w", kind, err)
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *server) addr() string { return s.ln.Addr().String() }

func (s *server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		switch s.kind {
		case kindTCP, kindMTCP:
			s.got(c)
		case kindYamuxSession, kindYamuxStream:
			ys, err := yamux.Server(c, yamuxConfig())
			if err != nil {
				_ = c.Close()
				continue
			}
			s.mu.Lock()
			s.sessions = append(s.sessions, ys)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() { // one stream, or streams until the session ends
				defer s.wg.Done()
				for {
					st, err := ys.AcceptStream()
					if err != nil {
						return
					}
					s.got(st)
					if s.kind == kindYamuxSession {
						return
					}
				}
			}()
		}
	}
}

// got holds an accepted connection or starts its handler.
func (s *server) got(c net.Conn) {
	s.mu.Lock()
	s.held = append(s.held, c)
	s.mu.Unlock()
	if s.handle != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
	s.accepted.Add(1)
}

// waitAccepted waits until n connections were accepted in all.
func (s *server) waitAccepted(ctx context.Context, n int) error {
	for s.accepted.Load() < int64(n) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s server: %d of %d connections accepted: %w", s.kind, s.accepted.Load(), n, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// closeConns closes what the server accepted and keeps listening.
func (s *server) closeConns() {
	s.mu.Lock()
	held, sessions := s.held, s.sessions
	s.held, s.sessions = nil, nil
	s.mu.Unlock()
	for _, c := range held {
		_ = c.Close()
	}
	for _, ys := range sessions {
		_ = ys.Close()
	}
}

// close stops the server and waits for its goroutines (handlers must end
// once their connections are closed).
func (s *server) close() {
	_ = s.ln.Close()
	s.closeConns()
	s.wg.Wait()
}

// opener opens client connections of one kind to one address.
type opener struct {
	kind, addr string
	mtcp       *mtcp.Dialer

	mu       sync.Mutex
	shared   *yamux.Session // kindYamuxStream: the one session
	sessions []*yamux.Session
}

func newOpener(kind, addr string) *opener {
	return &opener{kind: kind, addr: addr, mtcp: &mtcp.Dialer{}}
}

func (o *opener) open(ctx context.Context) (net.Conn, error) {
	var nd net.Dialer
	switch o.kind {
	case kindTCP:
		return nd.DialContext(ctx, "tcp", o.addr)
	case kindMTCP:
		return o.mtcp.DialContext(ctx, "tcp", o.addr)
	case kindYamuxSession:
		c, err := nd.DialContext(ctx, "tcp", o.addr)
		if err != nil {
			return nil, err
		}
		ys, err := yamux.Client(c, yamuxConfig())
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		o.mu.Lock()
		o.sessions = append(o.sessions, ys)
		o.mu.Unlock()
		return ys.OpenStream()
	case kindYamuxStream:
		o.mu.Lock()
		if o.shared == nil {
			c, err := nd.DialContext(ctx, "tcp", o.addr)
			if err != nil {
				o.mu.Unlock()
				return nil, err
			}
			if o.shared, err = yamux.Client(c, yamuxConfig()); err != nil {
				o.mu.Unlock()
				_ = c.Close()
				return nil, err
			}
			o.sessions = append(o.sessions, o.shared)
		}
		ys := o.shared
		o.mu.Unlock()
		return ys.OpenStream()
	}
	return nil, fmt.Errorf("unknown kind %q", o.kind)
}

// close ends the yamux sessions the opener made.
func (o *opener) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ys := range o.sessions {
		_ = ys.Close()
	}
	o.sessions, o.shared = nil, nil
}

// closeWrite ends c's output: CloseWrite where there is one, Close on a
// yamux stream (which half-closes).
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	if st, ok := c.(*yamux.Stream); ok {
		return st.Close()
	}
	return errors.New("no half-close")
}

// openMany opens n connections with the given number of concurrent
// dialers; it returns them and the first error.
func openMany(ctx context.Context, o *opener, n, dialers int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	err := parallel.ForEach(ctx, n, dialers, func(i int) error {
		c, err := o.open(ctx)
		if err != nil {
			return fmt.Errorf("opening %s connection %d: %w", o.kind, i, err)
		}
		conns[i] = c
		return nil
	})
	return conns, err
}

// openResult is what opening many connections gave.
type openResult struct {
	conns  []net.Conn      // those opened
	took   []time.Duration // each open that succeeded, sorted
	failed int
	errs   map[string]int // why opens failed
}

// openCounting opens n connections with the given number of concurrent
// dialers, going on past failures (it gives up once half of n failed).
func openCounting(ctx context.Context, o *opener, n, dialers int) (openResult, error) {
	var mu sync.Mutex
	r := openResult{errs: map[string]int{}}
	limit := n/2 + 10
	err := parallel.ForEach(ctx, n, dialers, func(i int) error {
		start := time.Now()
		c, err := o.open(ctx)
		took := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			r.failed++
			r.errs[err.Error()]++
			if r.failed >= limit {
				return fmt.Errorf("%d of %d %s connections failed to open, the last: %w", r.failed, n, o.kind, err)
			}
			return nil
		}
		r.conns = append(r.conns, c)
		r.took = append(r.took, took)
		return nil
	})
	slices.Sort(r.took)
	return r, err
}
