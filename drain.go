package mtcp

import (
	"context"
	"fmt"
	"time"

	"github.com/migratory/mtcp/internal/wire"
)

// Drain moves every session to other members of the pool, then closes the
// listener. The member announces that it is draining, so it gets no new
// sessions: new clients are redirected to another member. Each session's
// client is asked to go once the session sits at a checkpoint boundary, so
// that nothing is regenerated, or after Config.SettleTimeout as it is.
// Sessions that cannot move (their application never checkpointed) are
// waited for until they end. The member then waits for the members that took sessions to
// confirm them. If ctx ends first, Drain closes the listener anyway and
// returns an error wrapping ErrDrainIncomplete that says how many sessions
// remained. On a standalone listener Drain stops accepting and waits for
// the sessions to end.
func (ln *Listener) Drain(ctx context.Context) error {
	start := time.Now()
	ln.draining.Store(true)
	ln.log.Info("mtcp: draining", "sessions", ln.Sessions())
	var err error
	if n := ln.member; n != nil {
		_, err = n.Drain(ctx)
	} else {
		err = ln.waitSessionsEnd(ctx)
	}
	if err != nil {
		left := ln.Sessions()
		_ = ln.Close()
		return fmt.Errorf("%w: %d sessions remain after %v: %w", ErrDrainIncomplete, left, time.Since(start).Round(time.Millisecond), err)
	}
	ln.log.Info("mtcp: drained", "took", time.Since(start))
	return ln.Close()
}

// waitSessionsEnd waits until the listener has no session, or ctx ends.
func (ln *Listener) waitSessionsEnd(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for ln.Sessions() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// requestMove asks the client to move, if the session can; it reports
// whether it asked.
func (c *Conn) requestMove(m wire.Move) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.server
	if c.ended || !s.movableLocked(c) {
		return false
	}
	s.askMoveLocked(c, m)
	return true
}

// askMoveLocked asks the client to move: one MOVE goes out, on the current
// link or the next one, once the session sits at a checkpoint boundary or
// the settle timeout passed (settle.go). Asked again before its MOVE went
// out, the move keeps its wait, with the new target.
func (s *serverSide) askMoveLocked(c *Conn, m wire.Move) {
	fresh := s.moveTo == nil || s.moveSent
	s.moveTo, s.moveSent = &m, false
	if fresh {
		s.startSettleLocked(c)
	}
	if c.link != nil && !s.settle.waiting {
		// The MOVE is due now. One that waits for a checkpoint boundary
		// kicks the send loop when it is due (holdLocked, readDirect,
		// settleTimeout), not before: a send loop started now would find
		// nothing to send.
		c.link.kickNow()
	}
}

func (c *Conn) isEnded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}
