package transport

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Server answers requests from other members on a listener.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ln      net.Listener
	authKey []byte

	hmu      sync.RWMutex
	handlers map[string]Handler

	ctx    context.Context // cancelled by Close; parent of every handler's ctx
	cancel context.CancelFunc
	slots  chan struct{} // one token per connection served (MaxConns)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	badPeerLog rateLog // warnings about peers that break the handshake or the protocol

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // the accept loop, connections and handlers
}

// NewServer starts serving on ln and owns it from then on: Close closes it.
// It fails with ErrNoKey when cfg.Key is too short (ln is then left open).
// Register handlers with Handle, before or after this call.
func NewServer(ln net.Listener, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		ln:       ln,
		authKey:  authKey(cfg.Key),
		handlers: make(map[string]Handler),
		ctx:      ctx,
		cancel:   cancel,
		slots:    make(chan struct{}, cfg.MaxConns),
		conns:    make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, closes every connection, cancels the context of
// every running handler and waits for the handlers to return. It returns
// the listener's Close error; later calls return the same.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.closeErr = s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s.closeErr
}

// acceptLoop accepts connections while a slot is free.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		nc, err := s.ln.Accept()
		if err != nil {
			<-s.slots
			if s.ctx.Err() != nil {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				s.log.Error("transport: listener closed under the server", "err", err)
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("transport: accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		if !s.track(nc) {
			_ = nc.Close()
			<-s.slots
			return
		}
		s.wg.Add(1)
		go s.serve(nc)
	}
}

// track records an open connection so that Close can close it; false if
// the server is closed.
func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[nc] = struct{}{}
	return true
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}
