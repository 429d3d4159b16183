package mtcp

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

// The read token when a link is attached while a Read waits (a move or a
// resume: the session had no link). The waiting Read takes the token on the
// new link itself: no background reader starts only to be interrupted and
// hand the token over (two goroutine hops, each waiting for a free core on
// a busy machine, before the first byte after a move reached the
// application). A Read that wakes and returns without reading the link
// starts the background reader, so the link is never left unread.

// linklessClient dials a scripted server and leaves the session with no
// link, as a move that has left its link does; the keepalive check, which
// would start a background reader, comes after 10 s.
func linklessClient(t *testing.T) *Conn {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = inner.Close() })
	d := &Dialer{
		Logger: testLogger(t), KeepAlive: 20 * time.Second, KeepAliveTimeout: 60 * time.Second,
		HandshakeTimeout: time.Second, ResumeTimeout: time.Second,
	}
	nc, srv, _ := dialScripted(t, d, "tcp", inner.Addr().String(), inner.Accept)
	c := nc.(*Conn)
	t.Cleanup(func() {
		srv.Close()
		_ = inner.Close()
		_ = c.Close()
		waitSessionEnd(t, c)
	})
	c.mu.Lock()
	old := c.link
	c.link = nil
	c.mu.Unlock()
	old.shutdown()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderNone && !c.bgRunning
	}, 5*time.Second, time.Millisecond, "the old link's reader ends")
	return c
}

// TestWaitingReadTakesTokenOnAttachedLink: attached while a Read waits, the
// new link gets no background reader; the Read reads it.
func TestWaitingReadTakesTokenOnAttachedLink(t *testing.T) {
	c := linklessClient(t)
	type readResult struct {
		s   string
		err error
	}
	read := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		read <- readResult{string(buf[:n]), err}
	}()
	require.Eventually(t, c.readWaiting.Load, 5*time.Second, time.Millisecond, "the Read waits")

	client2, server2 := tcpPair(t)
	srv2 := newRawPeer(t, server2)
	defer srv2.Close()
	c.mu.Lock()
	starts := c.bgStarts
	c.attachLocked(client2, nil)
	c.mu.Unlock()

	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderApp && c.holderLink == c.link
	}, 5*time.Second, time.Millisecond, "the Read takes the token on the new link: %s", c.debugState())
	srv2.send(frame(wire.Data{Seq: 0, Payload: []byte("moved")}))
	select {
	case res := <-read:
		require.NoError(t, res.err)
		require.Equal(t, "moved", res.s)
	case <-time.After(5 * time.Second):
		t.Fatalf("the Read did not read the new link: %s", c.debugState())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Equal(t, starts, c.bgStarts, "a background reader started for a link a waiting Read takes")
}

// TestReadOfOldLinkTakesTokenOnNewLink: a Read reading the old link when
// the new one is attached (on a busy machine it has not yet seen the old
// link closed) goes on to the new link itself; no background reader starts
// for it in between.
func TestReadOfOldLinkTakesTokenOnNewLink(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer inner.Close()
	d := &Dialer{
		Logger: testLogger(t), KeepAlive: 20 * time.Second, KeepAliveTimeout: 60 * time.Second,
		HandshakeTimeout: time.Second, ResumeTimeout: time.Second,
	}
	nc, srv, _ := dialScripted(t, d, "tcp", inner.Addr().String(), inner.Accept)
	c := nc.(*Conn)
	defer func() {
		srv.Close()
		inner.Close()
		_ = c.Close()
		waitSessionEnd(t, c)
	}()
	type readResult struct {
		s   string
		err error
	}
	read := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		read <- readResult{string(buf[:n]), err}
	}()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderApp
	}, 5*time.Second, time.Millisecond, "the Read reads the first link")

	client2, server2 := tcpPair(t)
	srv2 := newRawPeer(t, server2)
	defer srv2.Close()
	c.mu.Lock()
	starts := c.bgStarts
	c.attachLocked(client2, nil) // interrupts the Read on the first link
	c.mu.Unlock()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderApp && c.holderLink == c.link
	}, 5*time.Second, time.Millisecond, "the Read takes the token on the new link: %s", c.debugState())
	srv2.send(frame(wire.Data{Seq: 0, Payload: []byte("moved")}))
	select {
	case res := <-read:
		require.NoError(t, res.err)
		require.Equal(t, "moved", res.s)
	case <-time.After(5 * time.Second):
		t.Fatalf("the Read did not read the new link: %s", c.debugState())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Equal(t, starts, c.bgStarts, "a background reader started for the new link on its way to the Read")
}

// TestReadLeavingLeftTokenStartsReader: a Read that returns without
// reading a link left to it (its deadline passed) starts the background
// reader, which reads what the peer sends.
func TestReadLeavingLeftTokenStartsReader(t *testing.T) {
	c := linklessClient(t)
	client2, server2 := tcpPair(t)
	srv2 := newRawPeer(t, server2)
	defer srv2.Close()
	c.mu.Lock()
	c.readWaiting.Store(true) // as if a Read waited: the link is left to it
	c.attachLocked(client2, nil)
	c.readWaiting.Store(false)
	started := c.bgRunning
	c.mu.Unlock()
	require.False(t, started, "the link is left to the Read")

	require.NoError(t, c.SetReadDeadline(time.Now().Add(-time.Second)))
	_, err := c.Read(make([]byte, 16))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderBackground
	}, 5*time.Second, time.Millisecond, "no background reader took the link: %s", c.debugState())

	// The background reader reads the link: the bytes wait in the session.
	srv2.send(frame(wire.Data{Seq: 0, Payload: []byte("held")}))
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.st.Buffered() == 4
	}, 5*time.Second, time.Millisecond, "the link is not read: %s", c.debugState())
}
