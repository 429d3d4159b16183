package mtcp

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBasicEcho(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	c, err := Dial("tcp", ln.Addr().String())
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
