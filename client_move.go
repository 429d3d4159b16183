package mtcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// move is a client's move in progress. The session keeps its link while
// the client dials the target and is challenged there: the stream flows on
// meanwhile, and stands still only from left on (the proof, the handover
// and the restore), or from the link's loss if it broke first.
type move struct {
	from, to Member
	start    time.Time     // Migrate was called
	left     time.Time     // the session left its link, or lost it (zero: not yet)
	done     chan error    // the move's outcome, for Migrate
	over     chan struct{} // closed when the move has ended, either way
	ctx      context.Context
	cancel   context.CancelFunc
	cutOff   *time.Timer // ends the move a resume timeout after the link's loss
	// resumable: the client held a checkpoint it can resume from when the
	// move began (else Migrate waited for one in vain, and it goes as it
	// is: the member says whether it can move).
	resumable bool
}

// errMoveLinkLost: the link a move attached broke before the move ended.
var errMoveLinkLost = errors.New("mtcp: the moved session's new link broke")

// testHookMoveAttached, if set (by tests), runs when a move has attached
// its new link, before the move ends.
var testHookMoveAttached atomic.Pointer[func(*Conn)]

// errNotResumableYet: the target challenged the client, but the client can
// no longer resume from any checkpoint it knows (its member let it free
// input beyond them while it dialled). It sends no PROOF, waits on its link
// for a checkpoint it can resume from, and dials again.
var errNotResumableYet = fmt.Errorf("%w: no checkpoint the client can resume from yet", ErrNotMovable)

// leaveLinkLocked (c.mu held) ends the session's link for the move under
// way, once the target has challenged the client: the positions it proves
// from now on must stay as they are. The stream went on while the client
// dialled, and its member may meanwhile have let it free input beyond
// every checkpoint it knows: then it keeps its link and answers
// errNotResumableYet. Outside a move (a reconnect) there is no link to
// leave.
func (cs *clientSide) leaveLinkLocked(c *Conn) error {
	m := cs.moving
	if m == nil {
		return nil
	}
	l := c.link
	if l != nil && m.resumable && !cs.resumableLocked(c) {
		return errNotResumableYet
	}
	m.lostLinkLocked()
	if l != nil {
		c.link = nil
		l.shutdown()
	}
	return nil
}

// lostLinkLocked notes that the session stands still from now on, if it
// did not already.
func (m *move) lostLinkLocked() {
	if m.left.IsZero() {
		m.left = time.Now()
	}
}

// linkLostLocked (c.mu held) notes that the session's link broke during
// the move: the move is now the session's resume, and the session is lost
// if no resume succeeds within the resume timeout from now, so the move
// ends then at the latest (a reconnect at the member still follows).
func (m *move) linkLostLocked(resumeTimeout time.Duration) {
	m.lostLinkLocked()
	if dl, ok := m.ctx.Deadline(); m.cutOff == nil && (!ok || time.Until(dl) > resumeTimeout) {
		m.cutOff = time.AfterFunc(resumeTimeout, m.cancel)
	}
}

// pause is how long the session stood still for the move.
func (m *move) pause() time.Duration {
	if m.left.IsZero() {
		return 0
	}
	return time.Since(m.left)
}

// runMove resumes the session at the target; if that fails, the session
// goes on where it was: on the link it kept, if the move failed before it
// left it, or else at its member again (or wherever the pool says it is).
func (cs *clientSide) runMove(c *Conn, m *move) {
	ctx, cancel := m.ctx, m.cancel // ends with the session too (endedContextLocked)
	defer cancel()
	err := cs.resumeAt(ctx, c, m.to.Addr)
	for wait := initialBackoff; ctx.Err() == nil; {
		if errors.Is(err, errNotResumableYet) {
			c.mu.Lock()
			werr := cs.awaitResumableOnLinkLocked(ctx, c)
			c.mu.Unlock()
			if werr != nil {
				err = werr
				break
			}
			err = cs.resumeAt(ctx, c, m.to.Addr)
			continue
		}
		if !errors.Is(err, ErrBusy) {
			break
		}
		// A target that is busy (its takeovers, or a draining member's
		// handover, did not fit in time) refused before the session
		// moved: the move waits for it, within its time, rather than
		// falling back.
		busy := err
		t := time.NewTimer(wait/2 + time.Duration(rand.Int64N(int64(wait))))
		select {
		case <-t.C:
			err = cs.resumeAt(ctx, c, m.to.Addr)
			if err != nil && ctx.Err() != nil && !errors.Is(err, ErrBusy) {
				// The move's time ran out during this attempt: what
				// kept the session from moving is that the target was
				// busy.
				err = fmt.Errorf("%w (then the move's time ran out: %w)", busy, err)
			}
		case <-ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, maxBackoff/4)
	}
	if hook := testHookMoveAttached.Load(); err == nil && hook != nil {
		(*hook)(c)
	}
	c.mu.Lock()
	cs.moving = nil
	if m.cutOff != nil {
		m.cutOff.Stop()
	}
	close(m.over)
	if err == nil {
		pause := m.pause()
		if c.link == nil && !c.ended {
			// The new link broke before the move ended, and linkDown left
			// the session to the move: it resumes now.
			cs.startReconnect(c, errMoveLinkLost, time.Now())
		}
		c.mu.Unlock()
		if logOn(c.log, slog.LevelInfo) {
			c.log.Info("mtcp: session moved", "from", m.from.Name, "to", m.to.Name, "pause", pause, "took", time.Since(m.start))
		}
		cs.d.Metrics.Moved(pause)
		m.done <- nil
		return
	}
	if c.ended {
		// The session ended meanwhile (it may have finished on the link
		// it kept while the client dialled): that is why the move stopped.
		err = c.sessionErrLocked()
	} else if l := c.link; l != nil && l == cs.obeying {
		// A move the member asked for on this link failed before the
		// client left it (this one, or one of the client's own that
		// began before the asked one could be released): release it.
		cs.releaseMemberLocked(c, l, err)
	} else if l == nil {
		cs.startReconnect(c, err, m.left)
	}
	c.mu.Unlock()
	c.log.Warn("mtcp: move failed, staying", "to", m.to.Name, "err", err)
	m.done <- fmt.Errorf("%w: to %s: %w", ErrMoveFailed, m.to.Name, err)
}
