package mtcp

import (
	"context"
	"errors"
	"time"

	"github.com/migratory/mtcp/internal/wire"
)

// obeyMove moves the session as its server asked in f, on link l while it
// was on member from, if the client's policy agrees. A move of the
// client's own under way when the MOVE came is waited for: if it fails
// before leaving the link, the session is still on the member that asked,
// which asks only once per link, so the asked move follows. (If the session
// moves anyway, the request is stale; if it reconnects, its member asks
// again on the new link.)
//
// The member may hold its application for the move it asked for. While
// the client obeys, cs.obeying names l: any move that fails with the
// session still on l then leaves it and resumes at the member
// (releaseMemberLocked), which lets its application go on and asks again.
func (cs *clientSide) obeyMove(c *Conn, f wire.Move, from string, l *link) {
	to := cs.d.policy().MoveRequested(f.Addr, f.Reason)
	if to == "" {
		return
	}
	c.mu.Lock()
	if c.link == l {
		cs.obeying = l
	}
	c.mu.Unlock()
	for {
		err := c.Migrate(context.Background(), to)
		if err == nil {
			c.mu.Lock()
			if cs.obeying == l && c.link == l {
				cs.obeying = nil // it stays: the policy chose the member it is on
			}
			c.mu.Unlock()
			return
		}
		if !errors.Is(err, ErrMoveInProgress) {
			// The move failed before it began (or runMove released l
			// already).
			c.mu.Lock()
			if c.link == l && cs.obeying == l && cs.moving == nil {
				cs.releaseMemberLocked(c, l, err)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		m, member := cs.moving, cs.member
		c.mu.Unlock()
		if m == nil || member != from {
			return
		}
		<-m.over
		c.mu.Lock()
		stay := cs.member == from && !c.ended && c.link == l
		c.mu.Unlock()
		if !stay {
			return
		}
	}
}

// releaseMemberLocked (c.mu held) ends link l, on which the member asked for a
// move that failed with the session still there, and resumes the session
// at the member. The member may hold its application for that move, and
// asks once per link: resuming there tells it that the session stays, so
// it lets its application go on and asks again (at most a few times).
// Staying on l would leave the application held until the member's settle
// timer.
func (cs *clientSide) releaseMemberLocked(c *Conn, l *link, cause error) {
	cs.obeying = nil
	if c.link != l || c.ended || c.closed {
		return
	}
	c.link = nil
	l.shutdown()
	cs.startReconnect(c, cause, time.Now())
}
