package mtcp

import (
	"context"
	"fmt"
	"net"
	"time"
)

// resumableLocked reports whether the client holds what a live move needs:
// a checkpoint it was told of (a mark) whose input it still keeps, so that
// the member it leaves can hand that checkpoint over and the client replay
// the input after it. A client told of no checkpoint yet has nothing to
// wait for: either it keeps all its input, or the application does not
// checkpoint and the member says so.
func (cs *clientSide) resumableLocked(c *Conn) bool {
	retained, _ := c.st.Retained()
	if retained == 0 || len(cs.marks) == 0 {
		return true
	}
	for _, m := range cs.marks {
		if m.in >= retained {
			return true
		}
	}
	return false
}

// awaitResumableLocked (c.mu held, and held again on return) waits, on the
// link the session has, until the client holds a checkpoint a live move can
// restore (resumableLocked): its member let it free input beyond every
// checkpoint it knows, its retention being full while its own application
// was slow to read, and the next checkpoint it hears of covers it again.
// Leaving before would only be refused by the member. The wait is bounded
// by ctx and the handshake timeout; after that the move is tried as it is.
func (cs *clientSide) awaitResumableLocked(ctx context.Context, c *Conn) error {
	if cs.resumableLocked(c) {
		return nil
	}
	t := time.NewTimer(cs.d.HandshakeTimeout)
	defer t.Stop()
	for !cs.resumableLocked(c) {
		if cs.awaitMarkLocked(ctx, c, t.C) {
			return nil
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case c.closed:
			return net.ErrClosed
		case c.ended:
			return c.sessionErrLocked()
		case cs.moving != nil || c.link == nil:
			return ErrMoveInProgress
		}
	}
	return nil
}

// awaitResumableOnLinkLocked (c.mu held, and held again on return) is the
// wait of a move whose client could no longer resume when the target
// challenged it: on its link, within the move's time, until it can again.
// A link lost meanwhile ends the wait: the move is then the session's
// resume, whatever it proves.
func (cs *clientSide) awaitResumableOnLinkLocked(ctx context.Context, c *Conn) error {
	for c.link != nil && !cs.resumableLocked(c) {
		cs.awaitMarkLocked(ctx, c, nil)
		if c.ended {
			return errEnded
		}
		if err := ctx.Err(); err != nil && c.link != nil {
			return fmt.Errorf("%w: waiting for a checkpoint to resume from: %w", ErrNotMovable, err)
		}
	}
	return nil
}

// awaitMarkLocked (c.mu held, and held again on return) waits for the next
// mark, the loss of the link, the end of the session, ctx or timeout, and
// reports whether timeout fired.
func (cs *clientSide) awaitMarkLocked(ctx context.Context, c *Conn, timeout <-chan time.Time) (timedOut bool) {
	if cs.markCh == nil {
		cs.markCh = make(chan struct{})
	}
	ch := cs.markCh
	c.mu.Unlock()
	select {
	case <-ch:
	case <-c.endedCh:
	case <-ctx.Done():
	case <-timeout:
		timedOut = true
	}
	c.mu.Lock()
	return timedOut
}

// wakeMarkWaitersLocked wakes whoever waits for a mark: one came, or the
// link it would come on is gone.
func (cs *clientSide) wakeMarkWaitersLocked() {
	if cs.markCh != nil {
		close(cs.markCh)
		cs.markCh = nil
	}
}
