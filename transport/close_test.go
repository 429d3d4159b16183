package transport

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServerClose: Close ends in-flight calls, idle pooled connections,
// handshakes in progress and the accept loop, and waits for handlers.
func TestServerClose(t *testing.T) {
	s, h := slowServer(t, nil)
	addr := s.Addr().String()
	idle := newClient(t, nil)
	require.NoError(t, idle.Call(ctxTimeout(t, 5*time.Second), addr, "echo", nil, nil))

	silent, err := net.Dial("tcp", addr) // a handshake that never starts
	require.NoError(t, err)
	defer silent.Close()

	c := newClient(t, nil)
	callErr := make(chan error, 1)
	go func() { callErr <- c.Call(ctxTimeout(t, time.Minute), addr, "slow", nil, nil) }()
	<-h.started

	start := time.Now()
	require.NoError(t, s.Close())
	require.Less(t, time.Since(start), time.Second)
	require.ErrorIs(t, <-h.ended, context.Canceled, "handlers see their context cancelled")
	select {
	case err := <-callErr:
		require.Error(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("an in-flight call did not end when the server closed")
	}
	require.NoError(t, silent.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, err = silent.Read(make([]byte, 1))
	require.False(t, isTimeout(err), "a handshaking connection is closed: %v", err)
	require.Zero(t, s.openCount())

	// The idle client notices and fails cleanly; Close again is harmless.
	require.Error(t, idle.Call(ctxTimeout(t, 5*time.Second), addr, "echo", nil, nil))
	require.NoError(t, s.Close())
}

func TestClientClose(t *testing.T) {
	s, h := slowServer(t, nil)
	addr := s.Addr().String()
	c := newClient(t, nil)
	require.NoError(t, c.Call(ctxTimeout(t, 5*time.Second), addr, "echo", nil, nil))

	callErr := make(chan error, 1)
	go func() { callErr <- c.Call(ctxTimeout(t, time.Minute), addr, "slow", nil, nil) }()
	<-h.started
	require.NoError(t, c.Close())
	select {
	case err := <-callErr:
		require.ErrorIs(t, err, ErrClosed)
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("an in-flight call did not end when the client closed")
	}
	require.Error(t, <-h.ended, "the server's handler is cancelled too")
	require.ErrorIs(t, c.Call(ctxTimeout(t, 5*time.Second), addr, "echo", nil, nil), ErrClosed)
	require.NoError(t, c.Close())
	require.Eventually(t, func() bool { return s.openCount() == 0 }, 2*time.Second, 5*time.Millisecond)
}
