//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package mtcp

import "net"

// hasUnread cannot peek on this platform: a handshake is charged for all
// the time it waits.
func hasUnread(net.Conn) bool { return false }
