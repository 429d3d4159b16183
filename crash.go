package mtcp

import (
	"net"

	"github.com/migratory/mtcp/internal/crashhook"
)

func init() {
	crashhook.Register(func(l any) { l.(*Listener).crash() })
}

// crash stops the listener the way a crash of its process would: the
// connections of its sessions are reset, nothing is said to clients or to
// the pool, and its sessions end (their applications' Read and Write fail
// with ErrCrashed). Clients of a pool resume elsewhere from replicated
// checkpoints, as after a real crash. mtcptest.Crash calls it.
func (ln *Listener) crash() {
	if n := ln.member; n != nil {
		crashhook.CrashRuntime(n) // no goodbyes: no leaving, no forgetting checkpoints
	}
	// A crashed process stops listening before its clients see their
	// connections reset: one that came back at once must not find the
	// member still answering, without its sessions.
	ln.crashing.Store(true)
	_ = ln.inner.Close()
	for _, c := range ln.sessionList() {
		crashSession(c)
	}
	_ = ln.Close() // sessions whose handshake ended meanwhile are crashed too
	for _, c := range ln.sessionList() {
		crashSession(c)
	}
}

// crashSession resets a session's connection and ends it, saying nothing.
func crashSession(c *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.link; l != nil {
		if tc, ok := l.nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // the peer sees a reset, as after a crash
		}
	}
	c.terminateLocked(&SessionLostError{SessionID: c.idStr, Reason: ErrCrashed})
}
