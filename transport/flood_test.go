package transport

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Kinds of unauthenticated connections in a flood.
const (
	floodSilent    = iota // connects and says nothing
	floodPartHello        // part of a hello, then nothing
	floodHello            // a whole hello, never a proof
	floodHalfProof        // a whole hello and half a proof
	floodTrickle          // a hello, one byte at a time
	floodKinds
)

// flood holds n unauthenticated connections to addr, of every kind in
// turn, each reopened shortly after the server drops it: silent
// connections, half-finished handshakes and a reconnect storm at once.
type flood struct {
	addr      string
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	n         int
	reconnect time.Duration // the mean pause before a dropped connection is reopened
	opened    atomic.Int64  // connections opened in all
	dropped   atomic.Int64  // connections the server closed
}

func startFlood(t *testing.T, addr string, n int, reconnect time.Duration) *flood {
	ctx, cancel := context.WithCancel(context.Background())
	f := &flood{addr: addr, ctx: ctx, cancel: cancel, n: n, reconnect: reconnect}
	for i := range n {
		f.wg.Go(func() { f.hold(i % floodKinds) })
	}
	t.Cleanup(f.stop)
	return f
}

// stop closes every connection of the flood and waits for its goroutines.
func (f *flood) stop() {
	f.cancel()
	f.wg.Wait()
}

// hold keeps one connection of the given kind open until the flood stops.
func (f *flood) hold(kind int) {
	d := net.Dialer{Timeout: time.Second}
	buf := make([]byte, 512)
	for f.ctx.Err() == nil {
		nc, err := d.DialContext(f.ctx, "tcp", f.addr)
		if err != nil {
			f.pause(50 * time.Millisecond)
			continue
		}
		f.opened.Add(1)
		stop := context.AfterFunc(f.ctx, func() { _ = nc.Close() })
		hello := testHello(MinMessage)
		switch kind {
		case floodPartHello:
			_, err = nc.Write(hello[:20])
		case floodHello:
			_, err = nc.Write(hello)
		case floodHalfProof:
			var p [macLen / 2]byte
			_, _ = crand.Read(p[:])
			_, err = nc.Write(append(hello, p[:]...))
		case floodTrickle:
			for i := 0; i < len(hello) && err == nil && f.ctx.Err() == nil; i++ {
				_, err = nc.Write(hello[i : i+1])
				f.pause(100 * time.Millisecond)
			}
		}
		for err == nil {
			_, err = nc.Read(buf)
		}
		stop()
		_ = nc.Close()
		if f.ctx.Err() == nil {
			f.dropped.Add(1)
		}
		f.pause(f.reconnect/2 + rand.N(f.reconnect))
	}
}

func (f *flood) pause(d time.Duration) {
	select {
	case <-time.After(d):
	case <-f.ctx.Done():
	}
}

// floodEnv names the environment variable that makes the test binary a
// flooding process: it holds "addr n reconnect".
const floodEnv = "TRANSPORT_TEST_FLOOD"

// floodProcess is a flood run by the test binary in a process of its own:
// another host as far as the server can tell, whose goroutines do not take
// turns with the server's and whose costs do not count as the server's.
type floodProcess struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan struct{}
	n       int
	opened  atomic.Int64
	dropped atomic.Int64
}

// startFloodProcess runs test again, in a new process that floods addr
// (runFlood).
func startFloodProcess(t *testing.T, test, addr string, n int, reconnect time.Duration) *floodProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", floodEnv, addr, n, reconnect))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &floodProcess{cmd: cmd, stdin: stdin, done: make(chan struct{}), n: n}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var opened, dropped int64
			if _, err := fmt.Sscanf(sc.Text(), "flood %d %d", &opened, &dropped); err == nil {
				p.opened.Store(opened)
				p.dropped.Store(dropped)
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

// stop ends the flood and waits for its process.
func (p *floodProcess) stop() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.cmd.Wait()
}

// runFlood, in a flooding process, floods as spec says until standard
// input closes, and reports its counts on standard output as it goes.
func runFlood(t *testing.T, spec string) {
	var addr string
	var n int
	var reconnect time.Duration
	_, err := fmt.Sscanf(spec, "%s %d %d", &addr, &n, &reconnect)
	require.NoError(t, err)
	f := startFlood(t, addr, n, reconnect)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		fmt.Printf("flood %d %d\n", f.opened.Load(), f.dropped.Load())
		select {
		case <-tick.C:
			continue
		case <-eof:
		}
		break
	}
	f.stop()
	fmt.Printf("flood %d %d\n", f.opened.Load(), f.dropped.Load())
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
	if spec := os.Getenv(floodEnv); spec != "" {
		runFlood(t, spec)
		return
	}
	leakCheck(t)
	const (
		floodFor    = 4 * time.Second
		callTimeout = DefaultCallTimeout
		callers     = 4
	)
	s, ln := startServer(t, nil) // the defaults: MaxConns, MaxHandshakes, HandshakeTimeout
	s.Handle("echo", echoHandler)
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

	f := startFloodProcess(t, "TestUnauthenticatedFlood", addr, 10*DefaultMaxConns, 2*time.Second)
	// Honest calls start once the server has taken in the flood's first
	// 10×MaxConns connections (or after a while: a server that cannot is
	// the failure the calls show).
	for end := time.Now().Add(15 * time.Second); ln.n.Load() <= int64(f.n) && time.Now().Before(end); {
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
	f.stop()
	opened, dropped := f.opened.Load(), f.dropped.Load()

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
