package mtcp

import (
	"errors"
	"log/slog"
	"time"
)

// Settled moves. A move that nobody is forced to make now (a drain,
// balancing, a server's Migrate) waits until the session sits at a
// checkpoint boundary: its newest checkpoint covers all its application
// read and wrote. The application is then held there (its Reads return
// nothing more, its Writes wait) while the MOVE goes out behind the last
// output and the client goes: the successor restores that checkpoint with
// nothing to regenerate, and the input the origin's application never read
// is read once, there. Until Config.SettleTimeout has passed, the MOVE
// waits for such a boundary; after it, it goes as it is and the successor
// regenerates from the checkpoint the client can resume from (a session
// that never rests, a long download). A held session whose client does not
// go within the handshake timeout, or comes back here, is let go on.
// Moves forced by failure (a client's policy, a crash) do not wait.

// settleState is a server session's move waiting for a boundary (c.mu).
type settleState struct {
	waiting bool        // the MOVE asked (moveTo, unsent) waits for a boundary
	held    bool        // the application is held at its newest checkpoint
	gen     uint64      // invalidates the timer of an earlier wait
	timer   *time.Timer // ends the wait, or the hold once the MOVE went
}

// stop cancels the settle timer.
func (st *settleState) stop() {
	st.gen++
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
}

// startSettleLocked begins the wait of a MOVE just asked for a boundary.
func (s *serverSide) startSettleLocked(c *Conn) {
	st := &s.settle
	st.stop()
	bound := s.ln.cfg.SettleTimeout
	if bound < 0 {
		st.waiting = false
		s.releaseLocked(c)
		return
	}
	st.waiting = true
	gen := st.gen
	st.timer = time.AfterFunc(bound, func() { c.settleTimeout(gen) })
	if s.atBoundaryLocked(c) {
		s.holdLocked(c)
	}
}

// atBoundaryLocked reports whether the newest checkpoint covers everything
// the application read and wrote, and the client can resume from it.
func (s *serverSide) atBoundaryLocked(c *Conn) bool {
	if !s.explicit || s.verifyPending || len(s.ckpts) == 0 {
		return false
	}
	r := s.ckpts[len(s.ckpts)-1]
	return r.InPos == c.st.Consumed() && r.OutPos == c.st.Written() && r.InPos >= c.st.Release()
}

// holdLocked holds the application at its newest checkpoint: a Read that
// is reading the link itself is interrupted, so that no input reaches the
// application past this point.
func (s *serverSide) holdLocked(c *Conn) {
	s.settle.held = true
	if c.holder == holderApp {
		// The MOVE waits for that Read to let go of the link
		// (moveDueLocked), which kicks the send loop as it does
		// (readDirect): a send loop kicked now would find the MOVE not
		// yet due.
		c.interruptAppReaderLocked(pastDeadline)
		return
	}
	if c.link != nil {
		c.link.kickNow()
	}
}

// moveWaitsLocked reports whether a MOVE asked waits to go out while the
// application is held for it.
func (c *Conn) moveWaitsLocked() bool {
	s := c.server
	return s != nil && s.settle.held && s.moveTo != nil && !s.moveSent && !c.ended
}

// releaseLocked lets a held application go on.
func (s *serverSide) releaseLocked(c *Conn) {
	if !s.settle.held {
		return
	}
	s.settle.held = false
	signal(c.readable)
	signal(c.writable)
}

// moveDueLocked reports whether the MOVE asked may go out on the link now.
// A settled MOVE goes once the application is held at its boundary, no
// Read of it is reading the link, and every byte it wrote went out before
// (the client then has all the output the checkpoint covers).
func (s *serverSide) moveDueLocked(c *Conn) bool {
	st := &s.settle
	if !st.waiting {
		return true
	}
	if !s.atBoundaryLocked(c) {
		s.releaseLocked(c) // a read or a write came before the hold
		return false
	}
	if !st.held {
		s.holdLocked(c)
	}
	return c.holder != holderApp && c.st.Sent() == c.st.Written()
}

// moveSentLocked notes that the MOVE went out: a held application stays
// held while its client goes, for at most the handshake timeout.
func (s *serverSide) moveSentLocked(c *Conn) {
	st := &s.settle
	st.waiting = false
	if !st.held {
		return
	}
	st.stop()
	gen := st.gen
	st.timer = time.AfterFunc(s.ln.cfg.HandshakeTimeout, func() { c.settleTimeout(gen) })
}

// resumedHereLocked: the client resumed the session on this member. A
// hold whose MOVE went out ends: the client did not go.
func (s *serverSide) resumedHereLocked(c *Conn) {
	if s.settle.held && !s.settle.waiting {
		s.settle.stop()
		s.releaseLocked(c)
	}
}

// settleTimeout ends a wait for a boundary (the MOVE goes as it is) or a
// hold whose client did not go.
func (c *Conn) settleTimeout(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.server
	if c.ended || s.settle.gen != gen {
		return
	}
	if s.settle.waiting {
		s.settle.waiting = false
		if logOn(c.log, slog.LevelInfo) {
			c.log.Info("mtcp: no checkpoint boundary within the settle timeout: the move goes as it is",
				"timeout", s.ln.cfg.SettleTimeout)
		}
	}
	s.settle.timer = nil
	s.releaseLocked(c)
	if c.link != nil {
		c.link.kickNow()
	}
}

// heldLocked reports whether the application is held for a move.
func (c *Conn) heldLocked() bool {
	return c.server != nil && c.server.settle.held && !c.ended
}

// whileHeldLocked runs when a Read finds the application held: the
// background reader keeps the link read, and the MOVE, if due, goes.
func (c *Conn) whileHeldLocked() {
	c.wakeReaderLocked()
	if s := c.server; s.moveTo != nil && !s.moveSent && c.link != nil {
		c.link.kickNow()
	}
}

// movedAwayLocked reports whether the session ended because another member
// has it now: the input this member has not delivered is the successor's.
func (c *Conn) movedAwayLocked() bool {
	return c.server != nil && c.ended && errors.Is(c.err, ErrMigrated)
}
