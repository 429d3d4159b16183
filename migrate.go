package mtcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	m.ctx, m.cancel = context.WithTimeout(c.endedContextLocked(), cs.d.HandshakeTimeout)
	cs.moving = m // the link stays until the target challenges the client (leaveLinkLocked)
	c.mu.Unlock()
	if logOn(c.log, slog.LevelInfo) {
		c.log.Info("mtcp: moving session", "from", cs.member, "to", target.Name, "addr", target.Addr)
	}
	if ctx.Done() == nil {
		// Nothing can end the wait before the move does (a move the
		// client's policy or its member asked for): the move runs on this
		// goroutine.
		cs.runMove(c, m)
	} else {
		go cs.runMove(c, m)
	}
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

func (cs *clientSide) memberLocked(name string) (Member, bool) {
	for _, m := range cs.members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{Name: name, Addr: cs.address}, false
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
