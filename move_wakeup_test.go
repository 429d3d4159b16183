package mtcp

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

// The read token across a new link. On a busy machine a session's new link
// can be attached before its background reader has run again since the old
// link was closed: the background reader still holds the token on the old
// link. A Read that then asked for the token interrupted the new link, and
// when the old link's read failed (not timed out) the background reader
// left without waking that Read: the session stood still until the link's
// keepalive check, half a keepalive interval later (500 ms by default; one
// move of fifty in mtcp-scale's moves scenario). The test puts the session
// in that state by hand: it attaches a second link while the background
// reader holds the token on the first, which stays open until a Read asks.

// TestReadTakesTokenFromReaderOfOldLink plays the server.
func TestReadTakesTokenFromReaderOfOldLink(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer inner.Close()

	// The keepalive check, which would end the wait, comes after 10 s.
	d := &Dialer{
		Logger: testLogger(t), KeepAlive: 20 * time.Second, KeepAliveTimeout: 60 * time.Second,
		HandshakeTimeout: time.Second, ResumeTimeout: time.Second,
	}
	nc, srv, _ := dialScripted(t, d, "tcp", inner.Addr().String(), inner.Accept)
	c := nc.(*Conn)
	defer func() {
		// The peer goes away: the session ends once its resume gives up.
		srv.Close()
		inner.Close()
		_ = c.Close()
		waitSessionEnd(t, c)
	}()

	// Nobody reads: the background reader holds the token on the first link.
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderBackground
	}, 5*time.Second, time.Millisecond)

	// A second link is attached while it still does.
	client2, server2 := tcpPair(t)
	srv2 := newRawPeer(t, server2)
	defer srv2.Close() // before the session's end is awaited
	c.mu.Lock()
	old := c.link
	c.attachLocked(client2, nil)
	c.mu.Unlock()

	// A Read asks for the token; then the first link closes.
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
		return c.appWants || c.holder == holderApp
	}, 5*time.Second, time.Millisecond, "the Read asks for the token")
	old.shutdown()

	// The Read reads the new link.
	srv2.send(frame(wire.Data{Seq: 0, Payload: []byte("moved")}))
	select {
	case res := <-read:
		require.NoError(t, res.err)
		require.Equal(t, "moved", res.s)
	case <-time.After(5 * time.Second):
		t.Fatalf("the Read waited for the keepalive check: %s", c.debugState())
	}
}
