package transport

import (
	"container/list"
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

	ctx      context.Context // cancelled by Close; parent of every handler's ctx
	cancel   context.CancelFunc
	hsTokens chan struct{} // one per goroutine in a handshake (2×MaxHandshakes)

	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	handshaking list.List // of *pending: connections in their handshake, oldest first
	served      int       // authenticated connections being served (at most MaxConns)
	evicted     int64     // handshakes closed to make room, in all
	refused     int64     // authenticated connections refused for want of MaxConns, in all
	closed      bool

	keys ephemeralKeys // the X25519 keys of its handshakes

	// Warnings about inbound connections, each kind at most once per warnEvery.
	badPeerLog, evictLog, fullLog rateLog

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
		hsTokens: make(chan struct{}, 2*cfg.MaxHandshakes),
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

// acceptLoop accepts connections while fewer than 2×MaxHandshakes
// goroutines are in a handshake (those closed to make room finish at once).
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		select {
		case s.hsTokens <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		nc, err := s.ln.Accept()
		if err != nil {
			<-s.hsTokens
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
		p := s.startHandshake(nc)
		if p == nil {
			_ = nc.Close()
			<-s.hsTokens
			return
		}
		s.wg.Add(1)
		go s.serve(p)
	}
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}
