package mtcp

import (
	"crypto/sha256"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEchoSurvivesResets echoes 24 MiB both ways through a proxy that resets
// the connection after every 768 KiB echoed.
func TestEchoSurvivesResets(t *testing.T) {
	srv := listenEcho(t, nil)
	px := newProxy(t, srv.Addr())
	defer px.Close()

	d := &Dialer{KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: 1 * time.Second}
	c, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)
	const n = 24 << 20
	cut, _ := px.ResetEvery(768 << 10)
	res := echoTransfer(c, n, 1, cut)
	require.NoError(t, c.Close())
	requireTransferOK(t, res, n, 1, srv.Digest(t))
	waitSessionEnd(t, c)
	require.GreaterOrEqual(t, px.Resets(), int64(20), "the path was cut at least 20 times")
	t.Logf("%d connections reset during the transfer", px.Resets())
}

// TestEchoSurvivesBlackholes stalls the path silently (no reset, no close)
// several times during an echo; keepalive must notice and resume.
func TestEchoSurvivesBlackholes(t *testing.T) {
	srv := listenEcho(t, &Config{Logger: testLogger(t)})
	px := newProxy(t, srv.Addr())
	defer px.Close()

	d := &Dialer{
		Logger:    testLogger(t),
		KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: 500 * time.Millisecond,
		HandshakeTimeout: 300 * time.Millisecond,
	}
	c, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)
	const n = 24 << 20
	const holes = 4
	var next atomic.Int64
	next.Store(n / (holes + 1))
	var made atomic.Int32
	res := echoTransfer(c, n, 2, func(got int64) {
		if got >= next.Load() && made.Load() < holes {
			next.Add(n / (holes + 1))
			made.Add(1)
			px.Blackhole()
			time.AfterFunc(800*time.Millisecond, px.Heal)
		}
	})
	require.NoError(t, c.Close())
	requireTransferOK(t, res, n, 2, srv.Digest(t))
	waitSessionEnd(t, c)
	require.Equal(t, int32(holes), made.Load())
}

// TestBlockedWriteInterrupted: a Write sending on a path that stopped
// silently is blocked in the socket itself (the session's buffers have
// room). A write deadline set then, or Close, must free it at once, not when
// the keepalive gives up on the path; every byte then still arrives, once,
// after the path heals.
func TestBlockedWriteInterrupted(t *testing.T) {
	for _, how := range []string{"deadline", "close"} {
		t.Run(how, func(t *testing.T) { testBlockedWriteInterrupted(t, how) })
	}
}

func testBlockedWriteInterrupted(t *testing.T, how string) {
	const n = 24 << 20 // more than the loopback socket buffers hold
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t), Window: 32 << 20})
	require.NoError(t, err)
	// The server echoes; after a Close the client reads no more, so the
	// server then only reads.
	digests := make(chan []byte, 1)
	var served sync.WaitGroup
	served.Add(1)
	go func() {
		defer served.Done()
		sc, err := ln.Accept()
		if err != nil {
			digests <- nil
			return
		}
		defer sc.Close()
		h := sha256.New()
		var out io.Writer = sc
		if how == "close" {
			out = io.Discard
		}
		if _, err := io.Copy(out, io.TeeReader(sc, h)); err != nil {
			t.Logf("server: %v", err)
			digests <- nil
			return
		}
		_ = sc.(*Conn).CloseWrite()
		digests <- h.Sum(nil)
		_, _ = io.Copy(io.Discard, sc) // until the client's close
	}()
	defer func() {
		_ = ln.Close()
		served.Wait()
	}()
	px := newProxy(t, ln.Addr().String())
	defer px.Close()
	d := &Dialer{Logger: testLogger(t), Retention: 32 << 20, Window: 32 << 20,
		KeepAlive: time.Second, KeepAliveTimeout: 30 * time.Second}
	c, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)

	echoed := make(chan []byte, 1)
	go func() {
		h := sha256.New()
		k, _ := io.Copy(h, c)
		if k != n {
			echoed <- nil
			return
		}
		echoed <- h.Sum(nil)
	}()

	payload, err := io.ReadAll(newPattern(n, 61))
	require.NoError(t, err)
	px.Blackhole()
	type result struct {
		n   int
		err error
	}
	wrote := make(chan result, 1)
	go func() {
		k, err := c.Write(payload)
		wrote <- result{k, err}
	}()
	select {
	case r := <-wrote:
		t.Fatalf("the write returned (%d, %v) on a stopped path: the test does not block it in the socket", r.n, r.err)
	case <-time.After(500 * time.Millisecond):
	}

	start := time.Now()
	if how == "deadline" {
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(100*time.Millisecond)))
	} else {
		require.NoError(t, c.Close())
	}
	select {
	case r := <-wrote:
		t.Logf("write returned after %v: %d, %v", time.Since(start), r.n, r.err)
		require.Equal(t, n, r.n, "every byte was retained by the session")
		require.NoError(t, r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked write was not freed")
	}

	px.Heal()
	if how == "deadline" {
		require.NoError(t, c.SetWriteDeadline(time.Time{}))
		require.NoError(t, c.(*Conn).CloseWrite())
		select {
		case got := <-echoed:
			require.Equal(t, digestOf(n, 61), got, "the echo, every byte once")
		case <-time.After(30 * time.Second):
			t.Fatal("the echo did not come back")
		}
		require.NoError(t, c.Close())
	} else {
		<-echoed // the closed session's reads end
	}
	select {
	case got := <-digests:
		require.Equal(t, digestOf(n, 61), got, "the server read every byte once")
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not read the whole stream")
	}
	waitSessionEnd(t, c)
}
