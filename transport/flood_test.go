package transport

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/ctlflood"
)

// floodEnv names the environment variable that makes the test binary a
// flooding process (ctlflood.Child).
const floodEnv = "TRANSPORT_TEST_FLOOD"

// floodConfig holds n unauthenticated connections, of every kind in turn,
// each reopened shortly after the server drops it: silent connections,
// half-finished handshakes and a reconnect storm at once.
func floodConfig(n int, reconnect time.Duration) ctlflood.Config {
	return ctlflood.Config{
		Conns: n, Reconnect: reconnect,
		Kinds: []ctlflood.Kind{ctlflood.Silent, ctlflood.PartHello, ctlflood.Hello, ctlflood.HalfProof, ctlflood.Trickle},
		Hello: func() []byte { return testHello(MinMessage) }, HalfProof: macLen / 2,
	}
}

// callStats gathers the outcome of honest calls.
type callStats struct {
	mu    sync.Mutex
	calls int
	slow  time.Duration // the longest call
	errs  []error
}

func (s *callStats) add(took time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.slow = max(s.slow, took)
	if err != nil && len(s.errs) < 10 {
		s.errs = append(s.errs, err)
	}
}

// TestUnauthenticatedFlood: 10×MaxConns connections that never finish
// their handshake (silent, part of a hello, a hello without its proof, a
// hello and half a proof, a hello trickled a byte at a time), each
// reopened as soon as the server drops it, while members call: a member
// that authenticated before the flood keeps its connection, members that
// connect during the flood get through, every call succeeds within a
// normal call timeout, and the server's goroutines and memory stay
// bounded.
func TestUnauthenticatedFlood(t *testing.T) {
	if ctlflood.Child(t, floodEnv, floodConfig(0, 0)) {
		return
	}
	const (
		floodFor    = 4 * time.Second
		callTimeout = DefaultCallTimeout
		callers     = 4
	)
	s, ln := startServer(t, nil) // the defaults: MaxConns, MaxHandshakes, HandshakeTimeout
	addr := s.Addr().String()

	var dials atomic.Int64
	pooled := newClient(t, func(cfg *Config) {
		cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	})
	require.NoError(t, pooled.Call(ctxTimeout(t, callTimeout), addr, "echo", echoMsg{}, nil))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	baseG := runtime.NumGoroutine()

	const floodConns = 10 * DefaultMaxConns
	f := ctlflood.StartProcess(t, floodEnv, []string{addr}, floodConfig(floodConns, 2*time.Second))
	// Honest calls start once the server has taken in the flood's first
	// 10×MaxConns connections (or after a while: a server that cannot is
	// the failure the calls show).
	for end := time.Now().Add(15 * time.Second); ln.n.Load() <= floodConns && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	var stats callStats
	var wg sync.WaitGroup
	done := make(chan struct{})
	call := func(c *Client, i int) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		start := time.Now()
		var out echoMsg
		err := c.Call(ctx, addr, "echo", echoMsg{Text: "honest", N: i}, &out)
		if err == nil && out.N != i+1 {
			err = fmt.Errorf("echo answered %+v", out)
		}
		stats.add(time.Since(start), err)
	}
	wg.Go(func() { // the member that authenticated before the flood
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			call(pooled, i)
		}
	})
	for range callers { // members that connect during the flood, afresh for every call
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				case <-time.After(50 * time.Millisecond):
				}
				c, err := NewClient(Config{NodeName: "fresh", Key: testKey})
				if err != nil {
					stats.add(0, err)
					return
				}
				call(c, i)
				_ = c.Close()
			}
		})
	}

	// Sample the server's cost while the flood goes on.
	var peakG int
	var peakHeap uint64
	var ms runtime.MemStats
	for end := time.Now().Add(floodFor); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		peakG = max(peakG, runtime.NumGoroutine())
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapInuse+ms.StackInuse)
	}
	close(done)
	wg.Wait()
	f.Stop()
	opened, dropped := f.Counts(0)

	t.Logf("flood: %d connections opened, %d dropped by the server; honest calls: %d, the slowest %v; "+
		"goroutines: %d before, peak %d; heap+stacks: %d MiB before, peak %d MiB",
		opened, dropped, stats.calls, stats.slow, baseG, peakG,
		(before.HeapInuse+before.StackInuse)>>20, peakHeap>>20)
	require.Empty(t, stats.errs, "every honest call succeeds")
	require.Greater(t, stats.calls, 2*callers, "honest calls were made")
	require.EqualValues(t, 1, dials.Load(), "the member's pooled connection was never pushed out")
	require.Greater(t, dropped, opened/2, "the server dropped flood connections to make room")
	// The server runs at most a goroutine per handshake slot (twice
	// MaxHandshakes, counting those being evicted), and for each honest
	// caller one for its connection and one for its handler; the callers
	// and the test add a few.
	require.LessOrEqual(t, peakG, baseG+2*DefaultMaxHandshakes+4*(callers+1)+16, "goroutines stay bounded")
	require.Less(t, peakHeap, before.HeapInuse+before.StackInuse+64<<20, "memory stays bounded")
	require.Eventually(t, func() bool { return s.openCount() <= 1 }, 5*time.Second, 10*time.Millisecond,
		"the flood's connections are gone")
}
