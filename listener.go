package mtcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/pool"
)

// Listener accepts mtcp sessions, and plain connections from clients that do
// not speak mtcp. It also takes back the sessions whose clients come back on
// a new connection: those never surface again from Accept.
type Listener struct {
	inner net.Listener
	cfg   Config
	log   *slog.Logger

	accepted  chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	hsSlots   chan struct{} // bounds connections in their handshake
	room      chan struct{} // a handshake left inFlight
	wg        sync.WaitGroup

	member   *pool.Runtime // pool membership; nil when standalone
	draining atomic.Bool   // Drain was called: no new sessions

	mem          *memBudget    // the sessions' buffers (memory.go)
	timers       *timerSet     // the keepalive checks of the sessions' links
	keys         auth.Keys     // the ephemeral X25519 keys of new sessions
	evictedIDs   evictedRecord // sessions dropped for memory, for their clients
	evictedTotal atomic.Int64  // sessions dropped for memory, in all
	evictWarn    logLimit
	atRisk       atomic.Int64 // sessions that a crash of this member would lose (crashsafe.go)
	riskWarn     logLimit     // sessions at risk are reported once per interval

	crashing atomic.Bool // mtcptest.Crash: sessions end without a word (crash.go)

	// plainKeepAlive: Listen made inner without kernel keepalive, which a
	// plain client's connection gets back (keepPlainAlive).
	plainKeepAlive bool

	mu        sync.Mutex
	sessions  map[[wire.SessionIDLen]byte]*Conn
	inFlight  map[net.Conn]*handshakeWait // connections still to prove who they are
	takeovers chan struct{}               // takeovers whose proof is checked elsewhere (MaxHandshakes)
	incoming  chan struct{}               // resumes of sessions a draining member moves here (MaxHandshakes; incoming.go)
	inTakes   chan struct{}               // their takeovers (MaxHandshakes)
	madeRoom  int                         // handshakes closed to make room
	reserved  int                         // sessions being taken over, counted against MaxSessions
	acceptErr error
}

// Listen announces on the local network address and returns a Listener that
// serves mtcp sessions. A nil cfg means standalone defaults. The accepted
// connections of mtcp sessions go without kernel TCP keepalive, as a
// Dialer's do: their links find dead paths themselves, and the four socket
// options that would turn it on cost every link a system call each. A
// plain client's connection gets the kernel keepalive that net.Listen
// gives (Go's defaults).
func Listen(network, address string, cfg *Config) (*Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	inner, err := lc.Listen(context.Background(), network, address)
	if err != nil {
		return nil, err
	}
	ln, err := newListener(inner, cfg, true)
	if err != nil {
		_ = inner.Close()
		return nil, err
	}
	return ln, nil
}

// NewListener serves mtcp sessions on connections accepted from inner (a TCP
// listener, an in-memory one, ...). Closing the Listener closes inner.
func NewListener(inner net.Listener, cfg *Config) (*Listener, error) {
	return newListener(inner, cfg, false)
}

// newListener is NewListener; plainKeepAlive says that inner accepts
// without kernel keepalive, which plain clients get back (Listen). It is
// set before the accept loop starts, which reads it.
func newListener(inner net.Listener, cfg *Config, plainKeepAlive bool) (*Listener, error) {
	if inner == nil {
		return nil, errors.New("mtcp: NewListener: nil listener")
	}
	if err := cfg.Verify(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	if c.TLS != nil {
		c.TLS = withoutH2(c.TLS, c.Logger)
	}
	ln := &Listener{
		inner:     inner,
		cfg:       c,
		log:       c.Logger.With("listener", inner.Addr().String()),
		accepted:  make(chan net.Conn, c.AcceptBacklog),
		closed:    make(chan struct{}),
		hsSlots:   make(chan struct{}, 3*c.MaxHandshakes), // 2× for handshakes, 1× for incoming moves
		room:      make(chan struct{}, 1),
		sessions:  make(map[[wire.SessionIDLen]byte]*Conn),
		inFlight:  make(map[net.Conn]*handshakeWait),
		takeovers: make(chan struct{}, c.MaxHandshakes),
		incoming:  make(chan struct{}, c.MaxHandshakes),
		inTakes:   make(chan struct{}, c.MaxHandshakes),
		mem:       newMemBudget(c.SessionMemory),
		timers:    newTimerSet(),

		plainKeepAlive: plainKeepAlive,
	}
	ln.evictWarn.every = 10 * time.Second
	ln.riskWarn.every = 10 * time.Second
	if c.inPool() {
		n, err := startMember(ln, &c)
		if err != nil {
			return nil, err
		}
		ln.member = n
	}
	ln.wg.Add(2)
	go ln.acceptLoop()
	go ln.evictLoop()
	return ln, nil
}

// Accept waits for and returns the next new connection: a *Conn for an mtcp
// client, a plain net.Conn for any other client.
func (ln *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-ln.accepted:
		return c, nil
	case <-ln.closed:
		ln.mu.Lock()
		err := ln.acceptErr
		ln.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: ln.inner.Addr().Network(), Addr: ln.inner.Addr(), Err: err}
	}
}

// Addr returns the listener's network address.
func (ln *Listener) Addr() net.Addr { return ln.inner.Addr() }

// Close stops accepting. Sessions already established go on while their
// link holds; they can no longer resume here, so one whose link breaks is
// lost (ErrListenerClosed). Accept then returns an error wrapping net.ErrClosed.
func (ln *Listener) Close() error {
	err := net.ErrClosed
	ln.closeOnce.Do(func() {
		close(ln.closed)
		err = ln.inner.Close()
		ln.mu.Lock()
		for nc := range ln.inFlight {
			_ = nc.Close()
		}
		sessions := make([]*Conn, 0, len(ln.sessions))
		for _, c := range ln.sessions {
			sessions = append(sessions, c)
		}
		ln.mu.Unlock()
		ln.wg.Wait()
		for {
			select {
			case c := <-ln.accepted:
				if mc, ok := c.(*Conn); ok && ln.crashing.Load() {
					crashSession(mc) // a crash says nothing, not even CLOSE
				} else {
					_ = c.Close()
				}
				continue
			default:
			}
			break
		}
		for _, c := range sessions {
			c.mu.Lock()
			if c.link == nil {
				c.failLocked(ErrListenerClosed)
			}
			c.mu.Unlock()
		}
		if ln.member != nil {
			ln.member.Close()
		}
	})
	return err
}

func (ln *Listener) isClosed() bool { return isClosed(ln.closed) }

// sessionList returns the sessions held.
func (ln *Listener) sessionList() []*Conn {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return slices.AppendSeq(make([]*Conn, 0, len(ln.sessions)), maps.Values(ln.sessions))
}

// Sessions returns how many sessions the listener holds (attached or waiting
// for their client to resume).
func (ln *Listener) Sessions() int {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return len(ln.sessions)
}

func (ln *Listener) acceptLoop() {
	defer ln.wg.Done()
	var backoff time.Duration
	for {
		select {
		case ln.hsSlots <- struct{}{}:
		case <-ln.closed:
			return
		}
		if !ln.makeRoom() {
			<-ln.hsSlots
			return
		}
		nc, err := ln.inner.Accept()
		if err != nil {
			<-ln.hsSlots
			if ln.isClosed() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				ln.log.Warn("mtcp: accept error, retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-ln.closed:
					return
				}
				continue
			}
			ln.mu.Lock()
			ln.acceptErr = fmt.Errorf("mtcp: accept: %w", err)
			ln.mu.Unlock()
			go ln.Close()
			return
		}
		backoff = 0
		ln.mu.Lock()
		if ln.isClosed() {
			ln.mu.Unlock()
			_ = nc.Close()
			<-ln.hsSlots
			return
		}
		since := time.Now()
		ln.inFlight[nc] = &handshakeWait{}
		ln.mu.Unlock()
		ln.wg.Add(1)
		go func() {
			defer ln.wg.Done()
			defer func() { <-ln.hsSlots }()
			ln.handshake(nc, since)
			ln.identified(nc)
		}()
	}
}

// evictAfter is how long a handshake may wait for its peer before the
// listener may close it to make room: an honest client's round trip, on
// the paths that matter most, with room to spare. The wait for a client's
// first flight (its preface and HELLO) gets evictSilentAfter: an mtcp
// client sends them together as soon as it is connected (and a plain
// client that speaks first, its request), so they are there when the
// listener looks; only the PROOF takes a round trip.
const (
	evictAfter       = 100 * time.Millisecond
	evictSilentAfter = 20 * time.Millisecond
)

// handshakeWait says since when a handshake waits for what its peer has to
// send (zero while the listener works on it) and how long it may, guarded
// by Listener.mu.
type handshakeWait struct {
	since    time.Time
	patience time.Duration
}

// waiting marks the wait of a handshake for its peer, which may last
// patience before the handshake may be closed to make room (0: the wait
// is over).
func (ln *Listener) waiting(nc net.Conn, patience time.Duration) {
	ln.mu.Lock()
	if w, ok := ln.inFlight[nc]; ok {
		w.since, w.patience = time.Time{}, patience
		if patience > 0 {
			w.since = time.Now()
		}
	}
	ln.mu.Unlock()
}

// makeRoom waits until a new connection may start its handshake: fewer
// than MaxHandshakes are in flight, or one of them has waited for its peer
// longer than its patience (evictAfter; evictSilentAfter for one that has
// sent nothing yet) and is closed to make room. Under a flood of connections that stall, honest handshakes
// (one round trip) still get through; a handshake is charged only for the
// time it waits for its peer, never for the listener being slow; and the
// flood is taken at most MaxHandshakes per evictAfter, however fast it
// comes back. A connection stays evictable until it proves itself
// (hsConn.proven): a resume HELLO, which anyone who knows a session id can
// send, proves nothing until its PROOF checks out. It reports false if the
// listener closed.
func (ln *Listener) makeRoom() bool {
	for {
		ln.mu.Lock()
		if len(ln.inFlight) < ln.cfg.MaxHandshakes {
			ln.mu.Unlock()
			return true
		}
		var oldest net.Conn
		var due time.Time // when the wait of oldest is over
		for nc, w := range ln.inFlight {
			if d := w.since.Add(w.patience); !w.since.IsZero() && (oldest == nil || d.Before(due)) {
				oldest, due = nc, d
			}
		}
		wait := evictAfter // none waits for its peer: look again then, or when one leaves
		if oldest != nil {
			wait = time.Until(due)
		}
		if oldest != nil && wait <= 0 && hasUnread(oldest) {
			// Its peer has spoken; its handshake has yet to read it (a
			// busy machine): charge it from now, not for the delay.
			ln.inFlight[oldest].since = time.Now()
			ln.mu.Unlock()
			continue
		}
		if oldest != nil && wait <= 0 {
			delete(ln.inFlight, oldest)
			ln.madeRoom++
			if ln.madeRoom == 1 || ln.madeRoom%1000 == 0 {
				ln.log.Warn("mtcp: too many handshakes at once, closing the one that waited longest", "closed", ln.madeRoom, "max", ln.cfg.MaxHandshakes)
			}
			ln.mu.Unlock()
			_ = oldest.Close()
			return true
		}
		ln.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ln.room:
		case <-t.C:
		case <-ln.closed:
			t.Stop()
			return false
		}
		t.Stop()
	}
}

// identified takes a connection out of the handshakes that may be evicted
// (see hsConn.proven), if it is still among them.
func (ln *Listener) identified(nc net.Conn) {
	ln.mu.Lock()
	_, ok := ln.inFlight[nc]
	delete(ln.inFlight, nc)
	ln.mu.Unlock()
	if ok {
		select {
		case ln.room <- struct{}{}:
		default:
		}
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// fullLocked (ln.mu held) reports whether the listener holds, or is taking
// over, MaxSessions sessions.
func (ln *Listener) fullLocked() bool {
	return len(ln.sessions)+ln.reserved >= ln.cfg.MaxSessions
}

// reserveSession keeps room for a session being taken over, if there is
// room; unreserveSession gives it back once the session is in (or not).
func (ln *Listener) reserveSession() bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.fullLocked() {
		return false
	}
	ln.reserved++
	return true
}

func (ln *Listener) unreserveSession() {
	ln.mu.Lock()
	ln.reserved--
	ln.mu.Unlock()
}

// session returns the session with that id this listener serves, or nil.
func (ln *Listener) session(id [wire.SessionIDLen]byte) *Conn {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return ln.sessions[id]
}

// deliverMoved hands a session that moved in to Accept, waiting as long as
// it takes: the member it came from gave it up, so dropping it for want of
// room in the backlog would lose it. It gives up only when the listener
// closes or the session ends.
func (ln *Listener) deliverMoved(c *Conn) bool {
	select {
	case ln.accepted <- c:
		return true
	case <-ln.closed:
	case <-c.endedCh:
	}
	return false
}

// keepPlainAlive turns kernel TCP keepalive on, with Go's defaults, for the
// connection of a plain client if Listen left it off (raw is the accepted
// connection, under TLS if any).
func (ln *Listener) keepPlainAlive(raw net.Conn) {
	if !ln.plainKeepAlive {
		return
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true})
	}
}

// deliver hands a new connection to Accept, waiting at most the handshake
// timeout for room in the backlog.
func (ln *Listener) deliver(c net.Conn) bool {
	select {
	case ln.accepted <- c:
		return true
	default:
	}
	t := time.NewTimer(ln.cfg.HandshakeTimeout)
	defer t.Stop()
	select {
	case ln.accepted <- c:
		return true
	case <-ln.closed:
	case <-t.C:
		ln.log.Warn("mtcp: accept backlog full, dropping a new connection")
	}
	return false
}

// withoutH2 removes "h2" from the ALPN protocols: net/http serves HTTP/2
// only on a *tls.Conn, and the listener hands it a connection that wraps one,
// so a client that negotiated h2 would get HTTP/1 answers.
func withoutH2(cfg *tls.Config, log *slog.Logger) *tls.Config {
	if !slices.Contains(cfg.NextProtos, "h2") {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.NextProtos = slices.DeleteFunc(cfg.NextProtos, func(p string) bool { return p == "h2" })
	log.Info("mtcp: HTTP/2 (ALPN h2) is not offered: plain TLS clients are served over HTTP/1.1")
	return cfg
}
