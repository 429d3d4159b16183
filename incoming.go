package mtcp

import "github.com/migratory/mtcp/internal/wire"

// Sessions that a draining member moves here are expected: their clients
// come because that member asked them to, a planned window at a time. Their
// resumes are admitted apart from new handshakes: they neither count
// towards MaxHandshakes nor can a flood of new connections evict them while
// they wait for their PROOF or for the handover, and their takeovers have a
// budget of their own. Both budgets are MaxHandshakes more. Anyone who
// knows a session id may claim to be one of them; what that buys is
// bounded by those budgets and by the handshake timeout, and only while a
// member drains.

// movedHere reports whether hello resumes a session whose member, another
// one, is draining: a session being moved here.
func (ln *Listener) movedHere(hello wire.Hello) bool {
	n := ln.member
	if n == nil || !hello.Resume || hello.Origin == "" || hello.Origin == n.Name() || ln.draining.Load() {
		return false
	}
	m, ok := n.Membership().Member(hello.Origin)
	return ok && m.Draining
}

// admitIncoming takes the handshake of a session being moved here out of
// the handshakes new connections compete with, if there is room among
// them; it reports whether it did (then incomingDone gives the room back
// when the handshake ends).
func (ln *Listener) admitIncoming(h *hsConn, hello wire.Hello) bool {
	if !ln.movedHere(hello) {
		return false
	}
	select {
	case ln.incoming <- struct{}{}:
	default:
		return false
	}
	ln.identified(h.raw)
	return true
}

func (ln *Listener) incomingDone() { <-ln.incoming }
