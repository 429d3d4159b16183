//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package transport

import "net"

// alive cannot peek at sockets on this system; a stale connection is then
// found when a call uses it.
func alive(net.Conn) bool { return true }
