package transport

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPoolReuse(t *testing.T) {
	s, ln := startServer(t, nil)
	c := newClient(t, func(cfg *Config) { cfg.MaxIdlePerAddr = 2 })
	addr := s.Addr().String()
	ctx := ctxTimeout(t, 5*time.Second)

	for range 50 {
		require.NoError(t, c.Call(ctx, addr, "echo", echoMsg{Text: "x"}, nil))
	}
	require.EqualValues(t, 1, ln.n.Load(), "sequential calls share one connection")
	require.Equal(t, 1, c.idleCount(addr))

	// Concurrent calls open more, and the pool keeps at most MaxIdlePerAddr.
	var wg sync.WaitGroup
	gate := make(chan struct{})
	s.Handle("gate", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		<-gate
		return nil, nil
	})
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() { errs[i] = c.Call(ctx, addr, "gate", nil, nil) })
	}
	require.Eventually(t, func() bool { return ln.n.Load() == 5 }, 2*time.Second, 5*time.Millisecond)
	close(gate)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 2, c.idleCount(addr))
	require.Eventually(t, func() bool { return s.openCount() == 2 }, 2*time.Second, 5*time.Millisecond,
		"the connections the pool did not keep are closed")
}

// TestPoolBoundedCalls: calls beyond MaxConnsPerAddr wait for one under way
// to end and take its connection, instead of opening more; one whose
// context ends while it waits fails with the context's error.
func TestPoolBoundedCalls(t *testing.T) {
	s, ln := startServer(t, nil)
	var running, most atomic.Int32
	gate := make(chan struct{})
	s.Handle("gate", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		k := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if k <= m || most.CompareAndSwap(m, k) {
				break
			}
		}
		<-gate
		return nil, nil
	})
	c := newClient(t, func(cfg *Config) { cfg.MaxConnsPerAddr = 2 })
	addr := s.Addr().String()
	ctx := ctxTimeout(t, 10*time.Second)

	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { errs[i] = c.Call(ctx, addr, "gate", nil, nil) })
	}
	require.Eventually(t, func() bool { return running.Load() == 2 }, 5*time.Second, 5*time.Millisecond)
	// One more, whose caller gives up while it waits.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := c.Call(short, addr, "gate", nil, nil)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "waiting for one of the 2 calls under way to end")
	close(gate)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 2, most.Load(), "at most MaxConnsPerAddr calls under way at once")
	require.EqualValues(t, 2, ln.n.Load(), "the waiting calls took the connections of those that ended")
}

// TestPoolStaleConnection: a pooled connection that the server closed
// (idle timeout, restart) is noticed before use and replaced.
func TestPoolStaleConnection(t *testing.T) {
	s, ln := startServer(t, func(cfg *Config) { cfg.IdleTimeout = 100 * time.Millisecond })
	c := newClient(t, nil) // keeps idle connections for 30 s
	addr := s.Addr().String()
	ctx := ctxTimeout(t, 5*time.Second)

	require.NoError(t, c.Call(ctx, addr, "echo", nil, nil))
	require.Eventually(t, func() bool { return s.openCount() == 0 }, 2*time.Second, 5*time.Millisecond,
		"the server closes idle connections")
	require.Equal(t, 1, c.idleCount(addr))
	require.NoError(t, c.Call(ctx, addr, "echo", nil, nil))
	require.EqualValues(t, 2, ln.n.Load())

	// A restarted server on the same address.
	require.NoError(t, s.Close())
	inner, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	s2, err := NewServer(inner, Config{Key: testKey})
	require.NoError(t, err)
	defer s2.Close()
	s2.Handle("echo", echoHandler)
	require.NoError(t, c.Call(ctx, addr, "echo", nil, nil))
}

func TestPoolIdleExpiry(t *testing.T) {
	s, _ := startServer(t, nil)
	c := newClient(t, func(cfg *Config) { cfg.IdleTimeout = 200 * time.Millisecond })
	addr := s.Addr().String()
	require.NoError(t, c.Call(ctxTimeout(t, 5*time.Second), addr, "echo", nil, nil))
	require.Equal(t, 1, c.idleCount(addr))
	require.Eventually(t, func() bool { return c.idleCount(addr) == 0 && s.openCount() == 0 },
		2*time.Second, 10*time.Millisecond, "idle pooled connections close after IdleTimeout/2")
}

// TestMaxConns: a connection beyond MaxConns is answered busy, and its
// call goes through on a new connection once another connection ends.
func TestMaxConns(t *testing.T) {
	var log logBuffer
	s, ln := startServer(t, func(cfg *Config) {
		cfg.MaxConns = 1
		cfg.IdleTimeout = 300 * time.Millisecond
		cfg.Logger = log.logger()
	})
	addr := s.Addr().String()
	a := newClient(t, nil)
	b := newClient(t, nil)
	ctx := ctxTimeout(t, 5*time.Second)

	require.NoError(t, a.Call(ctx, addr, "echo", nil, nil)) // a's idle connection holds the place
	start := time.Now()
	require.NoError(t, b.Call(ctx, addr, "echo", nil, nil))
	waited := time.Since(start)
	require.Greater(t, waited, 200*time.Millisecond, "b waited for a's connection to idle out")
	require.Less(t, waited, 2*time.Second)
	require.Greater(t, ln.n.Load(), int64(2), "b was turned away and tried again")
	log.contains(t, "MaxConns reached")

	// Turned away for good: the caller's deadline ends the retries.
	require.NoError(t, a.Call(ctx, addr, "echo", nil, nil)) // a takes the place back
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c := newClient(t, nil)
	err := c.Call(short, addr, "echo", nil, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// flakyConn fails its writes or reads on demand.
type flakyConn struct {
	net.Conn
	failWrite, failRead atomic.Bool
}

func (f *flakyConn) Write(p []byte) (int, error) {
	if f.failWrite.Load() {
		return 0, errors.New("injected write failure")
	}
	return f.Conn.Write(p)
}

func (f *flakyConn) Read(p []byte) (int, error) {
	if f.failRead.Load() {
		return 0, errors.New("injected read failure")
	}
	return f.Conn.Read(p)
}

// TestRetryOnlyUnsent: a call is retried on a fresh connection when its
// request could not be written, and never once it was.
func TestRetryOnlyUnsent(t *testing.T) {
	s, _ := startServer(t, nil)
	var served atomic.Int64
	s.Handle("count", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		return served.Add(1), nil
	})
	addr := s.Addr().String()
	var mu sync.Mutex
	var conns []*flakyConn
	c := newClient(t, func(cfg *Config) {
		cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			f := &flakyConn{Conn: nc}
			mu.Lock()
			conns = append(conns, f)
			mu.Unlock()
			return f, nil
		}
	})
	dialed := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
	ctx := ctxTimeout(t, 5*time.Second)

	var n int64
	require.NoError(t, c.Call(ctx, addr, "count", nil, &n))
	require.EqualValues(t, 1, n)

	conns[0].failWrite.Store(true) // the pooled connection breaks before the request
	require.NoError(t, c.Call(ctx, addr, "count", nil, &n))
	require.EqualValues(t, 2, n, "served once, on a fresh connection")
	require.Equal(t, 2, dialed())

	conns[1].failRead.Store(true) // the request goes out, the answer is lost
	err := c.Call(ctx, addr, "count", nil, &n)
	require.ErrorContains(t, err, "injected read failure")
	require.Eventually(t, func() bool { return served.Load() == 3 }, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, 2, dialed(), "a request that was sent is not sent again")
	require.EqualValues(t, 3, served.Load())
}
