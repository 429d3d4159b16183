package transport

import (
	"bufio"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// holdProof is a client connection whose handshake stops before its proof:
// the proof and everything after it are held back until release, and then
// dropped, as if the server had closed the connection before they arrived.
type holdProof struct {
	net.Conn
	writes  atomic.Int32
	held    chan struct{} // closed when the proof is held
	release chan struct{}
	once    sync.Once
}

func newHoldProof(nc net.Conn) *holdProof {
	return &holdProof{Conn: nc, held: make(chan struct{}), release: make(chan struct{})}
}

func (h *holdProof) Write(p []byte) (int, error) {
	if h.writes.Add(1) == 1 {
		return h.Conn.Write(p) // the client hello
	}
	h.once.Do(func() { close(h.held) })
	<-h.release
	return len(p), nil
}

// evictedCount returns the handshakes closed to make room.
func (s *Server) evictedCount() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted
}

// TestEvictedHandshakeToldBusy: a member whose handshake is evicted after
// the server sent its hello is told, in a frame only it can open, that its
// request was not read.
func TestEvictedHandshakeToldBusy(t *testing.T) {
	s, _ := startServer(t, func(cfg *Config) { cfg.MaxHandshakes = 1 })
	addr := s.Addr().String()
	nc := rawDial(t, addr)
	hp := newHoldProof(nc)
	cfg, err := Config{NodeName: "member", Key: testKey}.withDefaults()
	require.NoError(t, err)
	type result struct {
		hs  *handshakeResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		hs, err := clientHandshake(hp, bufio.NewReader(nc), &cfg, authKey(testKey))
		done <- result{hs, err}
	}()
	<-hp.held // the member has the server's hello; its proof is not sent
	rawDial(t, addr)
	require.Eventually(t, func() bool { return s.evictedCount() == 1 }, 5*time.Second, time.Millisecond,
		"the newer connection evicts the member's handshake")
	close(hp.release)
	r := <-done
	require.NoError(t, r.err)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = r.hs.sec.readFrame()
	require.ErrorIs(t, err, ErrBusy)
}

// TestForgedBusyRefused: a busy answer with a MAC not made with the pool
// key (injected by someone on the path, after an honest handshake) is a
// protocol error, not a reason to send the request again.
func TestForgedBusyRefused(t *testing.T) {
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	scfg, err := Config{NodeName: "server", Key: testKey}.withDefaults()
	require.NoError(t, err)
	go func() {
		br := bufio.NewReader(sc)
		sh, err := startServerHandshake(sc, br, &scfg, authKey(testKey), nil)
		if err != nil {
			return
		}
		_, _ = readProof(br)
		forged := serverHello{ak: authKey(otherKey), transcript: sh.transcript}
		_, _ = sc.Write(forged.busy())
	}()
	ccfg, err := Config{NodeName: "member", Key: testKey}.withDefaults()
	require.NoError(t, err)
	hs, err := clientHandshake(cc, bufio.NewReader(cc), &ccfg, authKey(testKey))
	require.NoError(t, err)
	_, err = hs.sec.readFrame()
	require.ErrorIs(t, err, ErrProtocol)
	require.NotErrorIs(t, err, ErrBusy)
}

// TestCallRetriedWhenTurnedAway: a call whose connection the server turns
// away before reading the request (its handshake evicted) is sent again on
// a new connection and served once.
func TestCallRetriedWhenTurnedAway(t *testing.T) {
	s, ln := startServer(t, func(cfg *Config) { cfg.MaxHandshakes = 1 })
	var served atomic.Int64
	s.Handle("count", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		return served.Add(1), nil
	})
	addr := s.Addr().String()
	var log logBuffer
	firstCh := make(chan *holdProof, 1)
	var dials atomic.Int32
	c := newClient(t, func(cfg *Config) {
		cfg.Logger = log.logger()
		cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", addr)
			if err != nil || dials.Add(1) > 1 {
				return nc, err
			}
			first := newHoldProof(nc)
			firstCh <- first
			return first, nil
		}
	})
	done := make(chan error, 1)
	var n int64
	go func() { done <- c.Call(ctxTimeout(t, 5*time.Second), addr, "count", nil, &n) }()
	first := <-firstCh
	<-first.held
	rawDial(t, addr)
	require.Eventually(t, func() bool { return s.evictedCount() == 1 && s.openCount() == 1 },
		5*time.Second, time.Millisecond, "the member's handshake is evicted and its connection closed")
	close(first.release)
	require.NoError(t, <-done)
	require.EqualValues(t, 1, n)
	require.EqualValues(t, 1, served.Load(), "served once")
	require.EqualValues(t, 2, dials.Load(), "sent again on a new connection")
	require.EqualValues(t, 3, ln.n.Load())
	log.contains(t, "server busy; retrying")
}

// TestTrickledHelloEndsOnTime: a hello trickled a byte at a time does not
// extend HandshakeTimeout, which runs from the accept.
func TestTrickledHelloEndsOnTime(t *testing.T) {
	const handshakeTimeout = 300 * time.Millisecond
	s, _ := startServer(t, func(cfg *Config) { cfg.HandshakeTimeout = handshakeTimeout })
	c := rawDial(t, s.Addr().String())
	hello := testHello(MinMessage)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := range hello {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			if _, err := c.Write(hello[i : i+1]); err != nil {
				return
			}
		}
	}()
	// The whole hello would take 30 ms × 78 bytes, over 2 s.
	took := expectDropped(t, c, 2*time.Second)
	require.GreaterOrEqual(t, took, handshakeTimeout-50*time.Millisecond)
}
