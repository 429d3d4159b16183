package transfer

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPatternIsDeterministicAndSeeded(t *testing.T) {
	a, err := io.ReadAll(NewPattern(10000, 7))
	require.NoError(t, err)
	b, err := io.ReadAll(NewPattern(10000, 7))
	require.NoError(t, err)
	c, err := io.ReadAll(NewPattern(10000, 8))
	require.NoError(t, err)
	require.Len(t, a, 10000)
	require.Equal(t, a, b)
	require.NotEqual(t, a, c)
	require.Equal(t, Digest(10000, 7), Digest(10000, 7))
	require.NotEqual(t, Digest(10000, 7), Digest(9999, 7))
}

func TestEchoDigestsBothDirections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		p, _ := io.ReadAll(c)
		p[len(p)/2] ^= 1 // one byte changed on the way back
		_, _ = c.Write(p)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	var seen int64
	res := Echo(c.(*net.TCPConn), NewPattern(1<<20, 3), func(n int64) { seen = n })
	require.NoError(t, res.WriteErr)
	require.NoError(t, res.ReadErr)
	require.Equal(t, int64(1<<20), res.SentN)
	require.Equal(t, int64(1<<20), res.ReceivedN)
	require.Equal(t, int64(1<<20), seen)
	require.Equal(t, Digest(1<<20, 3), res.Sent)
	require.False(t, bytes.Equal(res.Sent, res.Received), "the changed byte shows in the digests")
}

func TestPacedKeepsItsPace(t *testing.T) {
	start := time.Now()
	got, err := io.ReadAll(NewPaced(NewPattern(64<<10, 5), 256<<10)) // a quarter of a second's worth
	require.NoError(t, err)
	want, _ := io.ReadAll(NewPattern(64<<10, 5))
	require.Equal(t, want, got)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "the last 32 KiB waited for their time")
}

func TestServerEchoesAndDigestsEachConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := Serve(ln, t.Logf, nil)
	defer srv.Stop()
	for seed := uint64(1); seed <= 2; seed++ {
		c, err := net.Dial("tcp", srv.Addr())
		require.NoError(t, err)
		res := Echo(c.(*net.TCPConn), NewPattern(256<<10, seed), nil)
		require.NoError(t, c.Close())
		require.NoError(t, res.ReadErr)
		require.Equal(t, Digest(256<<10, seed), res.Received)
		require.Equal(t, Digest(256<<10, seed), srv.Digest(t))
	}
}
