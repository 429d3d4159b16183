//go:build unix

package mtcp

import (
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// kernelKeepAlive reports whether SO_KEEPALIVE is on for nc, a TCP
// connection.
func kernelKeepAlive(t *testing.T, nc net.Conn) bool {
	t.Helper()
	tc, ok := nc.(*net.TCPConn)
	require.True(t, ok, "a %T, not a TCP connection", nc)
	rc, err := tc.SyscallConn()
	require.NoError(t, err)
	var on int
	var serr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		on, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}))
	require.NoError(t, serr)
	return on != 0
}

// TestListenKeepsKernelKeepAliveForPlainClientsOnly: the links of mtcp
// sessions that Listen accepts go without kernel keepalive (they probe for
// themselves, as the Dialer's do), while a plain client's connection gets
// it, as net.Listen would have given it.
func TestListenKeepsKernelKeepAliveForPlainClientsOnly(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t)})
	require.NoError(t, err)
	defer ln.Close()

	d := &Dialer{Logger: testLogger(t)}
	cc, err := d.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer cc.Close()
	sc, err := ln.Accept()
	require.NoError(t, err)
	defer sc.Close()
	s := sc.(*Conn)
	s.mu.Lock()
	nc := s.link.nc
	s.mu.Unlock()
	require.False(t, kernelKeepAlive(t, nc), "an mtcp session's link")
	c := cc.(*Conn)
	c.mu.Lock()
	nc = c.link.nc
	c.mu.Unlock()
	require.False(t, kernelKeepAlive(t, nc), "the client's end of the link")

	plain, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer plain.Close()
	_, err = plain.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	require.NoError(t, err)
	pc, err := ln.Accept()
	require.NoError(t, err)
	defer pc.Close()
	var raw net.Conn
	switch p := pc.(type) {
	case plainConnCloseWrite:
		raw = p.Conn
	case *plainConn:
		raw = p.Conn
	default:
		raw = pc
	}
	require.True(t, kernelKeepAlive(t, raw), "a plain client's connection")
}
