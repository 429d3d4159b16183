package mtcp

import (
	"sort"
)

// Status is a snapshot of a listener: its pool and its sessions.
type Status struct {
	Member    string          // the member's name ("" when standalone)
	Draining  bool            // Drain was called
	Members   []Member        // the pool as this member sees it
	Sessions  []SessionStatus // the sessions held, attached or waiting for their client
	CopiesFor int             // sessions of other members whose checkpoints this one keeps
	// AtRisk counts the sessions that checkpoint yet would be lost if this
	// member crashed: their checkpoints lack copies (SessionStatus.AtRisk).
	AtRisk int
}

// SessionStatus is a snapshot of one session.
type SessionStatus struct {
	ID       string // as Conn.SessionID returns it
	Member   string // the member serving it ("" when standalone)
	Remote   string // the peer's address on the current (or last) link
	Attached bool   // a link is up
	Epoch    uint64 // raised by every move to another member
	// Replicas are the members its server copied its checkpoints to, as
	// last placed (server side, in a pool with Replicas; empty until the
	// first copy is placed).
	Replicas []string
	Movable  bool // it could move to another member now
	// Settling: a move asked by this member (Drain, Balance, Migrate)
	// waits for the session to sit at a checkpoint boundary, or for its
	// client to go once it does (Config.SettleTimeout).
	Settling bool
	Received uint64 // input bytes received
	Consumed uint64 // input bytes the application read
	Written  uint64 // output bytes the application wrote
	Retained int    // output bytes kept until the peer has them
	Buffered int    // input bytes waiting for the application
	// CrashSafe: a crash of its member would lose nothing, because a
	// checkpoint with all Config.Replicas copies covers every input byte
	// the client has freed (always false without replicas).
	CrashSafe bool
	// AtRisk: the application checkpoints, yet a crash of the member would
	// lose the session: its checkpoints cannot get their copies, or the
	// client had to free input no replicated checkpoint covers.
	AtRisk bool
}

// Status returns the session's figures.
func (c *Conn) Status() SessionStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	from, to := c.st.Retained()
	s := SessionStatus{
		ID: c.idStr, Attached: c.link != nil,
		Received: c.st.Received(), Consumed: c.st.Consumed(), Written: c.st.Written(),
		Retained: int(to - from), Buffered: c.st.Buffered(),
	}
	if a := c.addrs.Load(); a != nil && a.remote != nil {
		s.Remote = a.remote.String()
	}
	switch {
	case c.server != nil:
		s.Epoch, s.Movable = c.server.epoch, c.server.movableLocked(c)
		s.Settling = c.server.settle.waiting || c.server.settle.held
		s.CrashSafe, s.AtRisk = c.server.crashSafeLocked(c), c.server.atRisk
		if c.server.member != nil {
			s.Member = c.server.member.Name()
			if c.server.copies != nil {
				s.Replicas = c.server.copies.Holders()
			}
		}
	case c.client != nil:
		s.Epoch, s.Member, s.Movable = c.client.epoch, c.client.member, c.client.pool && !c.ended
	}
	return s
}

// Status returns a snapshot of the listener, sessions sorted by id.
func (ln *Listener) Status() Status {
	st := Status{Member: ln.NodeName(), Draining: ln.draining.Load(), Members: ln.Members()}
	for _, c := range ln.sessionList() {
		s := c.Status()
		st.Sessions = append(st.Sessions, s)
		if s.AtRisk {
			st.AtRisk++
		}
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].ID < st.Sessions[j].ID })
	if ln.member != nil {
		st.CopiesFor = ln.member.CopiesHeld()
	}
	return st
}
