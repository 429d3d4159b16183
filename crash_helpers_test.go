package mtcp

import (
	"net"
)

// crash stops a member the way a killed process stops: its sockets close
// (links with a reset), it says nothing to the pool or to other members, and
// its sessions are gone.
func (ln *Listener) crash() {
	n := ln.node
	n.mu.Lock()
	n.closing = true // no goodbye messages (forgetting checkpoints, leaving)
	n.mu.Unlock()
	_ = n.pool.Shutdown()
	_ = n.ctl.Close()
	_ = n.rpc.Close()
	for _, c := range ln.sessionList() {
		c.mu.Lock()
		if l := c.link; l != nil {
			if tc, ok := l.nc.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
		}
		c.terminateLocked(&SessionLostError{SessionID: c.idStr, Reason: errCrashed})
		c.mu.Unlock()
	}
	_ = ln.Close()
}

var errCrashed = &timeoutError{"member crashed (test)"}
