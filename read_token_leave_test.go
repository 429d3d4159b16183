package mtcp

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

// TestReadLeavingAskedTokenKeepsLinkRead: a Read asks the background reader
// to yield (appWants) and then returns on its deadline before taking the
// token. The background reader must go on reading the link. It used to
// yield to nobody and end, and nothing started another until the link's
// next check: for an idle link whose last check saw the background reader
// holding the token, an idle probe away (30 s by default), not half a
// keepalive interval.
func TestReadLeavingAskedTokenKeepsLinkRead(t *testing.T) {
	const keepAlive = 200 * time.Millisecond
	const idleProbe = 5 * time.Second
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer inner.Close()
	d := &Dialer{
		Logger: testLogger(t), KeepAlive: keepAlive, KeepAliveTimeout: 60 * time.Second, IdleProbe: idleProbe,
		HandshakeTimeout: time.Second, ResumeTimeout: time.Second,
	}
	nc, srv, _ := dialScripted(t, d, "tcp", inner.Addr().String(), inner.Accept)
	c := nc.(*Conn)
	defer func() {
		srv.Close()
		_ = inner.Close()
		_ = c.Close()
		waitSessionEnd(t, c)
	}()

	// The idle link's background reader holds the token across a check:
	// the next check is scheduled about an idle probe later.
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderBackground
	}, 5*time.Second, time.Millisecond)
	time.Sleep(3 * keepAlive)

	// A Read looks at its deadline (not passed), then waits for c.mu (held
	// here, as by any other holder) until its deadline passes.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	c.mu.Lock()
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16))
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	c.mu.Unlock()
	require.ErrorIs(t, <-done, os.ErrDeadlineExceeded)

	t.Logf("after the Read returned: %s", c.debugState())

	// The peer sends; the session should read it within half a keepalive
	// interval (the design's fallback), here allowed 5x that.
	start := time.Now()
	srv.send(frame(wire.Data{Seq: 0, Payload: []byte("x")}))
	read := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.st.Buffered() == 1
	}
	for !read() && time.Since(start) < 2*idleProbe {
		time.Sleep(time.Millisecond)
	}
	gap := time.Since(start)
	t.Logf("the peer's DATA was read after %v (keepAlive/2 = %v, idle probe = %v)", gap, keepAlive/2, idleProbe)
	require.Less(t, gap, 5*keepAlive/2, "the link was left with no reader")
}

// TestWakingReadLeavesAfterAttachSaysSo: a link is attached while a Read
// waits, and the Read's deadline passes during the attach. The attach
// holds c.mu from its look at the waiting Read until it has left the link
// to it (tokenLeft). The Read must not return in between: it would leave
// without seeing the link left to it, and nothing would read the link
// until its first check (here 10 s). It used to clear its waiting mark
// outside c.mu and return without taking it.
func TestWakingReadLeavesAfterAttachSaysSo(t *testing.T) {
	c := linklessClient(t)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	read := startRead(c)
	require.Eventually(t, c.readWaiting.Load, 5*time.Second, time.Millisecond, "the Read waits")
	client2, server2 := tcpPair(t)
	srv2 := newRawPeer(t, server2)
	defer srv2.Close()

	c.mu.Lock() // as the attach does, from its look at readWaiting on
	time.Sleep(300 * time.Millisecond)
	select {
	case res := <-read:
		c.mu.Unlock()
		t.Fatalf("the Read returned (%v) while an attach held c.mu", res.err)
	default:
	}
	c.attachLocked(client2, nil)
	c.mu.Unlock()
	res := <-read
	require.ErrorIs(t, res.err, os.ErrDeadlineExceeded)

	// The Read left the link unread: it started the background reader.
	start := time.Now()
	srv2.send(frame(wire.Data{Seq: 0, Payload: []byte("x")}))
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.st.Buffered() == 1
	}, 5*time.Second, time.Millisecond, "the link is read: %s", c.debugState())
	t.Logf("the peer's DATA was read after %v", time.Since(start))
}

// TestWakeWhileOldLinkReadKeepsLinkLeft: a link left to a waiting Read
// (tokenLeft) while a reader of the link the session left still holds the
// token. A Write or Close that wakes the background reader then finds the
// token held and starts none: the link must stay left to the Read, so that
// the Read, if it returns without reading it, starts the reader. The wake
// used to forget it.
func TestWakeWhileOldLinkReadKeepsLinkLeft(t *testing.T) {
	c := scriptedClient(t)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderBackground
	}, 5*time.Second, time.Millisecond, "the background reader reads the link")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokenLeft.Store(true) // as an attach leaves a new link to a waiting Read
	starts := c.bgStarts
	c.wakeReaderLocked()
	require.Equal(t, starts, c.bgStarts, "the token is held: no reader starts")
	require.True(t, c.tokenLeft.Load(), "the link stays left to the Read")
	c.tokenLeft.Store(false)
}
