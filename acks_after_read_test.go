package mtcp

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestCloseDuringReadEndsPromptly: Close while a Read waits on the link.
// The Read returns at once; the session must then end as soon as the
// server acknowledges the close, its acknowledgements read in the
// background, not at the link's next keepalive tick (half a minute away
// here).
func TestCloseDuringReadEndsPromptly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t)})
	require.NoError(t, err)
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c) // until the client's close
		served <- err
	}()

	d := &Dialer{Logger: testLogger(t), KeepAlive: 50 * time.Second, KeepAliveTimeout: 60 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		read <- err
	}()
	time.Sleep(100 * time.Millisecond) // the Read waits on the link
	require.NoError(t, c.Close())
	require.True(t, errors.Is(<-read, net.ErrClosed))
	select {
	case <-c.(*Conn).doneCh:
	case <-time.After(10 * time.Second):
		t.Fatalf("the closed session did not end: %s", c.(*Conn).debugState())
	}
	require.NoError(t, c.(*Conn).Err(), "it finished cleanly")
	require.NoError(t, <-served)
}
