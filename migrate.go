package mtcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
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

// move is a client's move in progress.
type move struct {
	from, to Member
	start    time.Time
	done     chan error
}

// Migrate moves this session's server end to the pool member whose client
// address is to ("" chooses one by spare capacity, see ChooseMember). On a
// client it returns once the session runs on the new member, or with an
// error after which the session goes on where it was; a client whose member
// let it free the input after every checkpoint it knows first waits on its
// link, within the handshake timeout, to hear of one it can resume from. On
// a server it asks the client to move and returns once the session has left
// this member; the client is asked once the session sits at a checkpoint
// boundary, or after Config.SettleTimeout (see SettleTimeout). The context
// bounds the wait, not the move.
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
	m := &move{from: from, to: target, start: time.Now(), done: make(chan error, 1)}
	cs.moving = m
	l := c.link
	c.link = nil
	l.shutdown()
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
		if cs.markCh == nil {
			cs.markCh = make(chan struct{})
		}
		ch := cs.markCh
		c.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-c.endedCh:
		case <-t.C:
			c.mu.Lock()
			return nil
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.mu.Lock()
		switch {
		case err != nil:
			return err
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

func (cs *clientSide) memberLocked(name string) (Member, bool) {
	for _, m := range cs.members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{Name: name, Addr: cs.address}, false
}

// runMove resumes the session at the target; if that fails, the session
// goes back to where it was (or wherever the pool says it is).
func (cs *clientSide) runMove(c *Conn, m *move) {
	ctx, cancel := context.WithTimeout(context.Background(), cs.d.HandshakeTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.endedCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := cs.resumeAt(ctx, c, m.to.Addr)
	// A target that is busy (its takeovers, or a draining member's
	// handover, did not fit in time) refused before the session left:
	// the move waits for it, within its time, rather than falling back.
	for wait := initialBackoff; errors.Is(err, ErrBusy) && ctx.Err() == nil; wait = min(2*wait, maxBackoff/4) {
		t := time.NewTimer(wait/2 + time.Duration(rand.Int64N(int64(wait))))
		select {
		case <-t.C:
			err = cs.resumeAt(ctx, c, m.to.Addr)
		case <-ctx.Done():
			t.Stop()
		}
	}
	c.mu.Lock()
	cs.moving = nil
	if err == nil {
		c.mu.Unlock()
		pause := time.Since(m.start)
		if logOn(c.log, slog.LevelInfo) {
			c.log.Info("mtcp: session moved", "from", m.from.Name, "to", m.to.Name, "pause", pause)
		}
		cs.d.Metrics.Moved(pause)
		m.done <- nil
		return
	}
	if !c.ended && c.link == nil {
		cs.startReconnect(c, err)
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
