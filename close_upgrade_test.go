package mtcp

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestCloseAfterAcknowledgedCloseWrite: a client half-closes, its FIN is
// acknowledged, and later it closes. The server must acknowledge the CLOSE
// too, so that the client's session ends at once, cleanly, instead of
// waiting out its linger time and ending with ErrLingerTimeout.
func TestCloseAfterAcknowledgedCloseWrite(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t)})
	require.NoError(t, err)
	defer ln.Close()
	d := &Dialer{Logger: testLogger(t), ResumeTimeout: 5 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	sc, err := ln.Accept()
	require.NoError(t, err)
	defer sc.Close()

	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, c.(*Conn).CloseWrite())
	got, err := io.ReadAll(sc)
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))
	mc := c.(*Conn)
	require.Eventually(t, func() bool {
		mc.mu.Lock()
		defer mc.mu.Unlock()
		return mc.st.OutputDone()
	}, 5*time.Second, time.Millisecond, "the FIN is acknowledged")

	// The server keeps its end open; the client closes.
	start := time.Now()
	require.NoError(t, c.Close())
	select {
	case <-mc.doneCh:
	case <-time.After(3 * time.Second):
		t.Fatalf("the client's Close is not acknowledged after %v:\nclient: %s\nserver: %s",
			time.Since(start), mc.debugState(), sc.(*Conn).debugState())
	}
	require.NoError(t, mc.Err(), "the session ended cleanly")
	_, err = sc.Write([]byte("x"))
	require.ErrorIs(t, err, ErrPeerClosed)
}
