package mtcp

import (
	"crypto/sha256"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// idleSessions opens n sessions on a standalone TCP listener whose
// application holds each accepted connection without reading it, as a
// server of many quiet clients does. It returns both ends and a function
// that closes them all.
func idleSessions(t *testing.T, n int) (clients, servers []net.Conn, closeAll func()) {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t)})
	require.NoError(t, err)
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	d := &Dialer{Logger: testLogger(t)}
	for range n {
		c, err := d.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		clients = append(clients, c)
		servers = append(servers, <-accepted)
	}
	return clients, servers, func() {
		for _, c := range clients {
			_ = c.Close()
		}
		for _, c := range servers {
			_ = c.Close()
		}
		for _, c := range clients {
			waitSessionEnd(t, c)
		}
		_ = ln.Close()
		for range accepted {
		}
	}
}

// settledGoroutines waits for the goroutine count to fall to at most
// limit (the goroutines that opened the sessions end) and returns it.
func settledGoroutines(limit int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 500 && n > limit; i++ {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// TestIdleSessionGoroutines: an idle session runs at most one goroutine at
// each end (the background reader, blocked reading its link); its send
// loops end once they have sent what there was.
func TestIdleSessionGoroutines(t *testing.T) {
	const n = 200
	base := runtime.NumGoroutine()
	clients, _, closeAll := idleSessions(t, n)
	defer closeAll()
	const slack = 16 // the accept loops, a timer firing
	got := settledGoroutines(base + 2*n + slack)
	t.Logf("%d idle sessions: %d goroutines over the %d before", n, got-base, base)
	require.LessOrEqual(t, got, base+2*n+slack, "at most one goroutine per end of an idle session")
	// The sessions work.
	for _, c := range clients[:3] {
		_, err := c.Write([]byte("x"))
		require.NoError(t, err)
	}
}

// TestIdleSessionMemory: an idle session holds no buffer of its own (read
// buffers, write scratch and batches are taken while bytes move and given
// back): heap and goroutine stacks of both ends stay well under 16 KiB.
func TestIdleSessionMemory(t *testing.T) {
	const n = 300
	before := heapAndStacks()
	base := runtime.NumGoroutine()
	_, servers, closeAll := idleSessions(t, n)
	defer closeAll()
	settledGoroutines(base + 2*n + 16)
	after := heapAndStacks()
	per := float64(int64(after)-int64(before)) / n
	t.Logf("%d idle sessions: %.1f KiB of heap and stacks per session, both ends", n, per/1024)
	require.Less(t, per, float64(16<<10), "heap and stacks per idle session, both ends")
	runtime.KeepAlive(servers)
}

func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// TestBlackholeWithDataOutstandingResumes: with idle probing made rare (an
// hour), a session that went quiet and then writes into a path that went
// silent still finds the link dead by its keepalive timeout, because the
// bytes await acknowledgement, and resumes; every byte arrives once, both
// ways. An idle session meanwhile keeps its link without chatter.
func TestBlackholeWithDataOutstandingResumes(t *testing.T) {
	srv := listenEcho(t, &Config{Logger: testLogger(t), IdleProbe: time.Hour})
	px := newProxy(t, srv.Addr())
	defer px.Close()
	mc, m := dialRareProbes(t, px.Addr())
	c := net.Conn(mc)
	sent, echoed := sha256.New(), sha256.New()
	roundTrip := func(p []byte) {
		sent.Write(p)
		_, err := c.Write(p)
		require.NoError(t, err)
		got := make([]byte, len(p))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		echoed.Write(got)
	}
	part, err := io.ReadAll(newPattern(64<<10, 5))
	require.NoError(t, err)
	roundTrip(part)

	// Idle: nothing awaits acknowledgement, and the link outlives several
	// keepalive timeouts without a probe.
	require.Eventually(t, func() bool {
		mc.mu.Lock()
		defer mc.mu.Unlock()
		return mc.link != nil && !mc.link.busyLocked()
	}, 10*time.Second, 10*time.Millisecond, "the link goes idle once its bytes are acknowledged")
	mc.mu.Lock()
	first := mc.link
	mc.mu.Unlock()
	time.Sleep(4 * rareProbesKeepAlive)
	mc.mu.Lock()
	require.Same(t, first, mc.link, "an idle link is kept, without chatter")
	mc.mu.Unlock()
	require.Zero(t, m.n.Load())

	// The path goes silent; the next bytes await acknowledgement and make
	// the link's silence count.
	px.Blackhole()
	healed := make(chan struct{})
	go func() {
		defer close(healed)
		for i := 0; i < 2000; i++ {
			mc.mu.Lock()
			gone := mc.link != first
			mc.mu.Unlock()
			if gone {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		px.Heal()
	}()
	roundTrip(part[:1000])
	<-healed
	// Counted by the reconnect once the new link is attached: the echo
	// may come back over it first.
	require.Eventually(t, func() bool { return m.n.Load() >= 1 }, 10*time.Second, 10*time.Millisecond,
		"the session resumed on a new link")
	require.NoError(t, mc.CloseWrite())
	_, err = io.Copy(io.Discard, c)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.Equal(t, sent.Sum(nil), echoed.Sum(nil), "the client read back what it wrote")
	require.Equal(t, sent.Sum(nil), srv.Digest(t), "the server read what the client wrote")
	waitSessionEnd(t, c)
}

// TestIdleProbeFindsDeadPath: a path that goes silent while the session is
// idle is found dead by the idle probe (its PING awaits an answer) and the
// session resumes.
func TestIdleProbeFindsDeadPath(t *testing.T) {
	srv := listenEcho(t, &Config{Logger: testLogger(t)})
	px := newProxy(t, srv.Addr())
	defer px.Close()
	m := &resumeCounter{}
	d := &Dialer{
		Logger: testLogger(t), Metrics: m,
		KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: 500 * time.Millisecond,
		IdleProbe: 300 * time.Millisecond, HandshakeTimeout: 300 * time.Millisecond,
	}
	c, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)
	px.Blackhole()
	require.Eventually(t, func() bool { return resumingNow(c) },
		20*time.Second, 10*time.Millisecond, "the idle probe finds the silent path")
	px.Heal()
	res := echoTransfer(c, 256<<10, 9, nil)
	require.NoError(t, c.Close())
	requireTransferOK(t, res, 256<<10, 9, srv.Digest(t))
	waitSessionEnd(t, c)
}

// resumingNow reports whether the client session lost its link.
func resumingNow(c net.Conn) bool {
	mc := c.(*Conn)
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return mc.link == nil
}

// TestBlackholeWhileWindowClosedResumes: a client whose output waits for
// the server's window (the server application reads nothing for a while)
// awaits the server, so a path that goes silent then is found dead by the
// keepalive timeout, not the idle probe (an hour here), and the session
// resumes with every byte delivered once.
func TestBlackholeWhileWindowClosedResumes(t *testing.T) {
	ln, px := listenBehindProxy(t, &Config{Logger: testLogger(t), IdleProbe: time.Hour, Window: 4 << 10})
	defer ln.Close()
	defer px.Close()
	read := make(chan struct{})
	digest := make(chan []byte, 1)
	go func() {
		sc, err := ln.Accept()
		if err != nil {
			digest <- nil
			return
		}
		defer sc.Close()
		<-read
		h := sha256.New()
		if _, err := io.Copy(h, sc); err != nil {
			digest <- nil
			return
		}
		digest <- h.Sum(nil)
	}()
	mc, m := dialRareProbes(t, px.Addr())
	c := net.Conn(mc)
	payload, err := io.ReadAll(newPattern(64<<10, 12))
	require.NoError(t, err)
	_, err = c.Write(payload)
	require.NoError(t, err)
	// The server took a window's worth and acknowledged it; the rest waits.
	require.Eventually(t, func() bool {
		mc.mu.Lock()
		defer mc.mu.Unlock()
		from, _ := mc.st.Retained()
		return mc.link != nil && mc.st.Sent() > 0 && from == mc.st.Sent() && mc.st.Sent() < uint64(len(payload))
	}, 10*time.Second, 10*time.Millisecond, "the client's output waits for the server's window")
	mc.mu.Lock()
	first := mc.link
	mc.mu.Unlock()

	px.Blackhole()
	require.Eventually(t, func() bool {
		mc.mu.Lock()
		defer mc.mu.Unlock()
		return mc.link != first
	}, 20*time.Second, 10*time.Millisecond, "the keepalive timeout finds the silent path")
	px.Heal()
	close(read)
	require.NoError(t, mc.CloseWrite())
	sum := sha256.Sum256(payload)
	select {
	case got := <-digest:
		require.Equal(t, sum[:], got, "the server read every byte once")
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not read the stream to its end")
	}
	require.Eventually(t, func() bool { return m.n.Load() >= 1 }, 10*time.Second, 10*time.Millisecond,
		"the session resumed on a new link")
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
}

// rareProbesKeepAlive is the keepalive timeout of dialRareProbes.
const rareProbesKeepAlive = 500 * time.Millisecond

// dialRareProbes dials addr with idle probing made rare (an hour) and a
// keepalive timeout of rareProbesKeepAlive, counting the session's resumes.
func dialRareProbes(t *testing.T, addr string) (*Conn, *resumeCounter) {
	t.Helper()
	m := &resumeCounter{}
	d := &Dialer{
		Logger: testLogger(t), Metrics: m,
		KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: rareProbesKeepAlive,
		IdleProbe: time.Hour, HandshakeTimeout: 300 * time.Millisecond,
	}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	return c.(*Conn), m
}
