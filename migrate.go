package mtcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp/internal/wire"
)

// MoveReason says why a server asks its client to move.
type MoveReason = wire.MoveReason

// Reasons for a server to ask its client to move.
const (
	MoveRequested = wire.MoveRequested // the server application called Migrate
	MoveDrain     = wire.MoveDrain     // the server is draining
	MoveBalance   = wire.MoveBalance   // the pool is unevenly loaded
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

// Migrate moves this session's server end to the pool member whose client
// address is to ("" chooses one by spare capacity, see ChooseMember). On a
// client it returns once the session runs on the new member, or with an
// error after which the session goes on where it was (or, if the session
// ended meanwhile, the error it ended with). The session keeps its link
// while the client connects to the target and is challenged there: the
// stream stands still only for the rest of the handshake. A client whose
// member let it free the input after every checkpoint it knows first waits
// on its link, within the handshake timeout, to hear of one it can resume
// from. On a server it asks the client to move and returns once the session
// has left this member; the client is asked once the session sits at a
// checkpoint boundary, or after Config.SettleTimeout (see SettleTimeout).
// The context bounds the wait, not the move.
func (c *Conn) Migrate(ctx context.Context, to string) error {
	if c.role == roleServer {
		return c.server.migrate(ctx, c, to, MoveRequested)
	}
	return c.client.migrate(ctx, c, to)
}

// Members returns the pool's members as the session's server last told the
// client (nil when not in a pool).
func (c *Conn) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return append([]Member(nil), c.client.members...)
	}
	if c.server.member != nil {
		return c.server.ln.Members()
	}
	return nil
}

// MemberName returns the name of the pool member serving the session
// ("" when standalone).
func (c *Conn) MemberName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client.member
	}
	if c.server.member != nil {
		return c.server.member.Name()
	}
	return ""
}

// chooseTargetLocked resolves a Migrate target against the member list.
func (cs *clientSide) chooseTargetLocked(to string) (Member, error) {
	if to == "" {
		if m, ok := ChooseMember(cs.members, cs.member); ok {
			return m, nil
		}
		return Member{}, ErrNoMember
	}
	for _, m := range cs.members {
		if m.Addr == to {
			if m.Draining {
				return m, fmt.Errorf("%w: %s", ErrMemberDraining, m)
			}
			return m, nil
		}
	}
	return Member{}, fmt.Errorf("%w: %q", ErrUnknownMember, to)
}

func (cs *clientSide) migrate(ctx context.Context, c *Conn, to string) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return c.opError("migrate", net.ErrClosed)
	case c.ended:
		err := c.sessionErrLocked()
		c.mu.Unlock()
		return c.opError("migrate", err)
	case !cs.pool:
		c.mu.Unlock()
		return c.opError("migrate", ErrNotPool)
	case cs.moving != nil || c.link == nil:
		c.mu.Unlock()
		return c.opError("migrate", ErrMoveInProgress)
	}
	if err := cs.awaitResumableLocked(ctx, c); err != nil {
		c.mu.Unlock()
		return c.opError("migrate", err)
	}
	if cs.moving != nil || c.link == nil {
		// The link broke, or another move began, while this one waited.
		c.mu.Unlock()
		return c.opError("migrate", ErrMoveInProgress)
	}
	target, err := cs.chooseTargetLocked(to)
	if err != nil {
		c.mu.Unlock()
		return c.opError("migrate", err)
	}
	if target.Name == cs.member {
		c.mu.Unlock()
		return nil
	}
	from, _ := cs.memberLocked(cs.member)
	m := &move{from: from, to: target, start: time.Now(), done: make(chan error, 1), over: make(chan struct{}),
		resumable: cs.resumableLocked(c)}
	m.ctx, m.cancel = context.WithTimeout(context.Background(), cs.d.HandshakeTimeout)
	cs.moving = m // the link stays until the target challenges the client (leaveLinkLocked)
	c.mu.Unlock()
	if logOn(c.log, slog.LevelInfo) {
		c.log.Info("mtcp: moving session", "from", cs.member, "to", target.Name, "addr", target.Addr)
	}
	go cs.runMove(c, m)
	select {
	case err := <-m.done:
		if err != nil {
			return c.opError("migrate", err)
		}
		return nil
	case <-ctx.Done():
		return c.opError("migrate", ctx.Err())
	}
}

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
// (releaseLocked), which lets its application go on and asks again.
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
				cs.releaseLocked(c, l, err)
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

// releaseLocked (c.mu held) ends link l, on which the member asked for a
// move that failed with the session still there, and resumes the session
// at the member. The member may hold its application for that move, and
// asks once per link: resuming there tells it that the session stays, so
// it lets its application go on and asks again (at most a few times).
// Staying on l would leave the application held until the member's settle
// timer.
func (cs *clientSide) releaseLocked(c *Conn, l *link, cause error) {
	cs.obeying = nil
	if c.link != l || c.ended || c.closed {
		return
	}
	c.link = nil
	l.shutdown()
	cs.startReconnect(c, cause, time.Now())
}

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

func (cs *clientSide) memberLocked(name string) (Member, bool) {
	for _, m := range cs.members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{Name: name, Addr: cs.address}, false
}

// runMove resumes the session at the target; if that fails, the session
// goes on where it was: on the link it kept, if the move failed before it
// left it, or else at its member again (or wherever the pool says it is).
func (cs *clientSide) runMove(c *Conn, m *move) {
	ctx, cancel := m.ctx, m.cancel
	defer cancel()
	go func() {
		select {
		case <-c.endedCh:
			cancel()
		case <-ctx.Done():
		}
	}()
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
		t := time.NewTimer(wait/2 + time.Duration(rand.Int64N(int64(wait))))
		select {
		case <-t.C:
			err = cs.resumeAt(ctx, c, m.to.Addr)
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
		cs.releaseLocked(c, l, err)
	} else if l == nil {
		cs.startReconnect(c, err, m.left)
	}
	c.mu.Unlock()
	c.log.Warn("mtcp: move failed, staying", "to", m.to.Name, "err", err)
	m.done <- fmt.Errorf("%w: to %s: %w", ErrMoveFailed, m.to.Name, err)
}

// migrate (server side) asks the client to move and waits for the session
// to leave.
func (s *serverSide) migrate(ctx context.Context, c *Conn, to string, reason MoveReason) error {
	if s.member == nil {
		return c.opError("migrate", ErrNotPool)
	}
	target, err := moveTarget(s.member, to)
	if err != nil {
		return c.opError("migrate", err)
	}
	c.mu.Lock()
	if c.ended {
		err := c.sessionErrLocked()
		c.mu.Unlock()
		if errors.Is(err, ErrMigrated) {
			return nil
		}
		return c.opError("migrate", err)
	}
	if !s.movableLocked(c) {
		c.mu.Unlock()
		return c.opError("migrate", ErrNotMovable)
	}
	s.askMoveLocked(c, wire.Move{Reason: reason, Name: target.Name, Addr: target.ClientAddr})
	c.mu.Unlock()
	select {
	case <-c.endedCh:
		if err := c.Err(); !errors.Is(err, ErrMigrated) {
			return c.opError("migrate", err)
		}
		return nil
	case <-ctx.Done():
		return c.opError("migrate", ctx.Err())
	}
}
