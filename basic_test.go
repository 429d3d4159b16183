package mtcp

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBasicEcho(t *testing.T) {
	srv := listenEcho(t, nil)
	c, err := Dial("tcp", srv.Addr())
	require.NoError(t, err)
	defer c.Close()
	msg := bytes.Repeat([]byte("hello mtcp "), 100_000)
	go func() {
		_, _ = c.Write(msg)
		_ = c.(*Conn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, len(msg), len(got))
	require.True(t, bytes.Equal(msg, got))
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
	_ = net.ErrClosed
}

// TestDoneSaysWhenTheSessionEnded: Done closes once a closed session's
// last bytes are delivered, with Err nil; a session lost (its server
// crashed, its client found no one to resume with) closes it too, with Err
// saying why.
func TestDoneSaysWhenTheSessionEnded(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	defer ln.Close()
	d := &Dialer{ResumeTimeout: time.Second}
	c, sc := acceptDialed(t, ln, d, ln.Addr().String())
	select {
	case <-c.(*Conn).Done():
		t.Fatal("Done closed while the session runs")
	default:
	}
	closeWithLastWords(t, c, sc)
	require.NoError(t, sc.Close())
	for _, end := range []net.Conn{c, sc} {
		waitSessionEnd(t, end) // Done closed
		require.NoError(t, end.(*Conn).Err(), "the session finished cleanly")
	}

	c, sc = acceptDialed(t, ln, d, ln.Addr().String())
	ln.crash()
	for _, end := range []net.Conn{sc, c} {
		waitSessionEnd(t, end) // Done closed
		var lost *SessionLostError
		require.ErrorAs(t, end.(*Conn).Err(), &lost)
	}
}

// TestMigrateAfterCloseIsErrClosed: a closed session's Migrate fails as
// its Read and Write do, with net.ErrClosed.
func TestMigrateAfterCloseIsErrClosed(t *testing.T) {
	srv := listenEcho(t, nil)
	c := dialHonest(t, srv.Addr())
	require.NoError(t, c.Close())
	err := c.(*Conn).Migrate(context.Background(), "")
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = c.Write([]byte("x"))
	require.ErrorIs(t, err, net.ErrClosed)
}
