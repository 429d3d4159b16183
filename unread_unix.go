//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package mtcp

import (
	"net"
	"syscall"
)

// hasUnread reports whether bytes wait in nc's socket that no one has read
// yet: a handshake waiting with such bytes waits for the listener, not for
// its peer. It peeks without blocking and without taking the connection's
// read lock, which the handshake's own Read holds.
func hasUnread(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	unread := false
	_ = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		unread = err == nil && n > 0
	})
	return unread
}
