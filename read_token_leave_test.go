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
