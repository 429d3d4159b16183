package mtcp

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
)

// vanish opens a session by hand, sends a one-byte request and goes away
// without a word (its connection reset): the server is left holding what it
// owes the client until it drops the session.
func vanish(addr string, request byte) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	kp, err := auth.NewKeyPair()
	if err != nil {
		return err
	}
	h := rawHello()
	h.Key = kp.Pub
	if _, err := nc.Write(wire.AppendFrame(wire.Preface[:], h)); err != nil {
		return err
	}
	f, err := wire.ReadFrame(bufio.NewReader(nc), nil)
	if err != nil {
		return err
	}
	if _, ok := f.(wire.Welcome); !ok {
		return fmt.Errorf("%v instead of WELCOME", f.Type())
	}
	var data [17]byte
	wire.PutDataHeader((*[16]byte)(data[:16]), 0, 1)
	data[16] = request
	if _, err := nc.Write(data[:]); err != nil {
		return err
	}
	_ = nc.(*net.TCPConn).SetLinger(0)
	return nil
}

// owedBytes is what owingServer writes, shared by its sessions.
var owedBytes [64 << 10]byte

// owingServer answers a session's first byte: 'v' with owed bytes, written
// until the session ends; 'e' by echoing everything.
func owingServer(ln *Listener, owed int) *sync.WaitGroup {
	var wg sync.WaitGroup
	serveEach(&wg, ln, nil, func(c *Conn) {
		defer c.Close()
		var req [1]byte
		if _, err := io.ReadFull(c, req[:]); err != nil {
			return
		}
		if req[0] == 'e' {
			_, _ = io.Copy(c, c)
			_ = c.CloseWrite()
			_, _ = io.Copy(io.Discard, c)
			return
		}
		for off := 0; off < owed; off += len(owedBytes) {
			if _, err := c.Write(owedBytes[:]); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, c)
	})
	return &wg
}

// heapInUse is the memory live in the heap (as of the last collection) and
// in goroutine stacks.
func heapInUse() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() + s[1].Value.Uint64())
}

// TestVanishedClientsStayWithinSessionMemory: clients open sessions, ask
// for much and vanish. The listener's SessionMemory bounds what their
// sessions hold: it drops them, the largest first, while an honest session
// opened meanwhile streams intact. MTCP_SCALE=1 runs it at full size
// (10,000 clients owed 8 MiB each against 256 MiB).
func TestVanishedClientsStayWithinSessionMemory(t *testing.T) {
	clients, owed, budget, honest := 1000, 4<<20, 32<<20, int64(16<<20)
	if os.Getenv("MTCP_SCALE") != "" {
		clients, owed, budget, honest = 10_000, 8<<20, 256<<20, 64<<20
	}
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{
		Logger: testLogger(t), SessionMemory: budget, Retention: owed, MaxHandshakes: 64,
	})
	require.NoError(t, err)
	wg := owingServer(ln, owed)
	defer func() {
		ln.Close()
		wg.Wait()
	}()

	runtime.GC()
	base := heapInUse()
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if h := heapInUse() - base; h > peak.Load() {
				peak.Store(h)
				t.Logf("heap +%d MiB, budget used %d MiB, sessions %d, goroutines %d", h>>20, ln.mem.used.Load()>>20, ln.Sessions(), runtime.NumGoroutine())
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	// The honest session echoes while the clients vanish.
	honestErr := make(chan error, 1)
	go func() {
		c, err := (&Dialer{Logger: testLogger(t)}).Dial("tcp", ln.Addr().String())
		if err != nil {
			honestErr <- err
			return
		}
		defer c.Close()
		if _, err := c.Write([]byte{'e'}); err != nil {
			honestErr <- err
			return
		}
		sent, got := sha256.New(), sha256.New()
		werr := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.MultiWriter(c, sent), newPattern(honest, 5))
			if err == nil {
				err = c.(*Conn).CloseWrite()
			}
			werr <- err
		}()
		n, err := io.Copy(got, c)
		if err == nil {
			err = <-werr
		}
		if err == nil && (n != honest || string(sent.Sum(nil)) != string(got.Sum(nil))) {
			err = fmt.Errorf("echo of %d bytes came back as %d bytes with another digest", honest, n)
		}
		honestErr <- err
	}()

	var failed atomic.Int32
	var firstErr atomic.Pointer[error]
	next := atomic.Int64{}
	var workers sync.WaitGroup
	for range 32 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for next.Add(1) <= int64(clients) {
				if err := vanish(ln.Addr().String(), 'v'); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	workers.Wait()
	if p := firstErr.Load(); p != nil {
		t.Fatalf("%d of %d vanishing clients failed to open a session: %v", failed.Load(), clients, *p)
	}
	select {
	case err := <-honestErr:
		require.NoError(t, err, "the honest session")
	case <-time.After(60 * time.Second):
		t.Fatal("the honest session did not finish")
	}
	close(stop)
	<-sampled
	t.Logf("%d vanished clients owed %d MiB each: heap grew by %d MiB at most (budget %d MiB); %d sessions dropped",
		clients, owed>>20, peak.Load()>>20, budget>>20, ln.evictedTotal.Load())
	require.Less(t, peak.Load(), int64(budget+64<<20), "heap growth within the budget and 64 MiB")
	require.NotZero(t, ln.evictedTotal.Load(), "sessions were dropped")
}

// gate is a Dialer.DialFunc whose links can be cut, and whose dials can be
// refused for a while.
type gate struct {
	mu      sync.Mutex
	closed  bool
	current net.Conn
}

func (g *gate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errors.New("gate closed")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err == nil {
		g.current = nc
	}
	return nc, err
}

// cut resets the current link and refuses dials until open.
func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if tc, ok := g.current.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = g.current.Close()
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = false
}

// TestEvictedSessionTellsItsClient: a session dropped for memory while its
// client was away is lost for its client with ErrEvicted when it comes back.
func TestEvictedSessionTellsItsClient(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t), SessionMemory: 256 << 10, Retention: 1 << 20})
	require.NoError(t, err)
	wg := owingServer(ln, 1<<20)
	defer func() {
		ln.Close()
		wg.Wait()
	}()

	g := &gate{}
	away, err := (&Dialer{Logger: testLogger(t), DialFunc: g.dial}).Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer away.Close()
	_, err = away.Write([]byte{'v'})
	require.NoError(t, err)
	_, err = io.ReadFull(away, make([]byte, 1024))
	require.NoError(t, err)
	g.cut()
	require.Eventually(t, func() bool {
		s := ln.Status().Sessions
		return len(s) == 0 || !s[0].Attached // away, perhaps dropped already
	}, 5*time.Second, 5*time.Millisecond)

	// Another session needs memory: the one whose client is away goes.
	other, err := (&Dialer{Logger: testLogger(t)}).Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer other.Close()
	_, err = other.Write([]byte{'v'})
	require.NoError(t, err)
	_, err = io.ReadFull(other, make([]byte, 512<<10))
	require.NoError(t, err, "the other session gets the memory")
	require.EqualValues(t, 1, ln.evictedTotal.Load())

	g.open()
	_ = away.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, away)
	require.ErrorIs(t, err, ErrEvicted, "the client learns why its session is gone")
	require.ErrorIs(t, err, ErrSessionLost)
}

// TestFirstDetachTimeout: a session whose client never resumed it is
// dropped after FirstDetachTimeout; one that resumed once waits for its
// client up to DetachTimeout.
func TestFirstDetachTimeout(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t),
		FirstDetachTimeout: 200 * time.Millisecond, DetachTimeout: 10 * time.Second})
	require.NoError(t, err)
	es := startEchoServer(t, ln)
	defer es.Stop()
	open := func() (*gate, net.Conn) {
		g := &gate{}
		c, err := (&Dialer{Logger: testLogger(t), DialFunc: g.dial, ResumeTimeout: 20 * time.Second}).Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		echoOnce(t, c, "hello")
		return g, c
	}
	g1, never := open()
	defer never.Close()
	g2, once := open()
	defer once.Close()
	g2.cut()
	g2.open()
	echoOnce(t, once, "resumed once") // the client resumed it

	g1.cut()
	g2.cut()
	require.Eventually(t, func() bool { return ln.Sessions() == 1 }, 5*time.Second, 10*time.Millisecond,
		"the session never resumed goes after FirstDetachTimeout")
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, 1, ln.Sessions(), "the session resumed once waits for DetachTimeout")
	g2.open()
	echoOnce(t, once, "back")
	closeHonest(t, once)
	es.Digest(t)

	g1.open()
	_ = never.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, never)
	require.ErrorIs(t, err, ErrUnknownSession, "the dropped session's client finds it gone")
}
