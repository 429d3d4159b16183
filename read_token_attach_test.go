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

// scriptedClient dials a scripted server; the keepalive check, which would
// start a background reader, comes after 10 s. The session ends when the
// test does, once its resume gives up.
func scriptedClient(t *testing.T) *Conn {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
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
	return c
}

// linklessClient is a scriptedClient left with no link, as a move that has
// left its link leaves the session.
func linklessClient(t *testing.T) *Conn {
	c := scriptedClient(t)
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

type readResult struct {
	s   string
	err error
}

// startRead starts a Read of c, whose result comes on the channel.
func startRead(c *Conn) <-chan readResult {
	read := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		read <- readResult{string(buf[:n]), err}
	}()
	return read
}

// attachScripted attaches a new link to c, as a move or a resume does, and
// returns its scripted peer (closed before the session's end is awaited)
// and how many background readers the session had started before.
func attachScripted(t *testing.T, c *Conn) (*rawPeer, int) {
	client2, server2 := tcpPair(t)
	srv2 := newRawPeer(t, server2)
	t.Cleanup(srv2.Close)
	c.mu.Lock()
	defer c.mu.Unlock()
	starts := c.bgStarts
	c.attachLocked(client2, nil)
	return srv2, starts
}

// attachAndRead attaches a new link to c, whose peer then sends want: the
// Read started before takes the token on it and returns want, and no
// background reader starts meanwhile.
func attachAndRead(t *testing.T, c *Conn, read <-chan readResult, want string) {
	srv2, starts := attachScripted(t, c)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderApp && c.holderLink == c.link
	}, 5*time.Second, time.Millisecond, "the Read takes the token on the new link: %s", c.debugState())
	srv2.send(frame(wire.Data{Seq: 0, Payload: []byte(want)}))
	select {
	case res := <-read:
		require.NoError(t, res.err)
		require.Equal(t, want, res.s)
	case <-time.After(5 * time.Second):
		t.Fatalf("the Read did not read the new link: %s", c.debugState())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Equal(t, starts, c.bgStarts, "a background reader started for a link the Read takes")
}

// TestWaitingReadTakesTokenOnAttachedLink: attached while a Read waits, the
// new link gets no background reader; the Read reads it.
func TestWaitingReadTakesTokenOnAttachedLink(t *testing.T) {
	c := linklessClient(t)
	read := startRead(c)
	require.Eventually(t, c.readWaiting.Load, 5*time.Second, time.Millisecond, "the Read waits")
	attachAndRead(t, c, read, "moved")
}

// TestReadOfOldLinkTakesTokenOnNewLink: a Read reading the old link when
// the new one is attached (on a busy machine it has not yet seen the old
// link closed) goes on to the new link itself; no background reader starts
// for it in between.
func TestReadOfOldLinkTakesTokenOnNewLink(t *testing.T) {
	c := scriptedClient(t)
	read := startRead(c)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderApp
	}, 5*time.Second, time.Millisecond, "the Read reads the first link")
	attachAndRead(t, c, read, "moved") // the attach interrupts the Read on the first link
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
