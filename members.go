package mtcp

import (
	"fmt"
	"strconv"

	"github.com/migratory/mtcp/pool"
)

// Member is a pool member as clients and the other members see it.
type Member struct {
	Name     string // unique name in the pool
	Addr     string // where clients connect
	Sessions int    // sessions it holds
	// BytesPerSec is the member's recent traffic with its clients, both
	// ways: with Sessions, how well it serves them (a member whose
	// sessions get a small part of the pool's bytes per second per
	// session serves slowly).
	BytesPerSec uint64
	Draining    bool // leaving the pool: takes no sessions
	// Balancing: the member sheds the sessions above its share itself
	// (Config.Balance). Shown by the member a client is attached to, of
	// itself only.
	Balancing bool
}

// String describes the member: name@address, its sessions, and whether it drains.
func (m Member) String() string {
	d := ""
	if m.Draining {
		d = " draining"
	}
	return m.Name + "@" + m.Addr + " (" + strconv.Itoa(m.Sessions) + " sessions" + d + ")"
}

// Members returns the pool's members as this listener sees them (nil for a
// standalone listener).
func (ln *Listener) Members() []Member {
	if ln.member == nil {
		return nil
	}
	list := ln.member.Membership().Members()
	out := make([]Member, 0, len(list))
	for _, m := range list {
		out = append(out, memberOf(m, m.Name == ln.member.Name() && ln.cfg.Balance != nil))
	}
	return out
}

// memberOf is the pool's member m as clients see it; balancing says
// whether it balances (a member knows that of itself only).
func memberOf(m pool.Member, balancing bool) Member {
	return Member{Name: m.Name, Addr: m.ClientAddr, Sessions: m.Sessions, BytesPerSec: m.BytesPerSec, Draining: m.Draining, Balancing: balancing}
}

// poolMembers are members as the pool's functions judge them.
func poolMembers(members []Member) []pool.Member {
	out := make([]pool.Member, len(members))
	for i, m := range members {
		out[i] = pool.Member{Name: m.Name, ClientAddr: m.Addr, Sessions: m.Sessions, BytesPerSec: m.BytesPerSec, Draining: m.Draining}
	}
	return out
}

// NodeName returns the listener's name in its pool ("" when standalone).
func (ln *Listener) NodeName() string {
	if ln.member == nil {
		return ""
	}
	return ln.member.Name()
}

// GossipAddr returns the address the pool's gossip is bound to ("" when
// standalone): what other members list in Config.Join.
func (ln *Listener) GossipAddr() string {
	if ln.member == nil {
		return ""
	}
	return ln.member.Membership().GossipAddr()
}

// moveTarget resolves where a server asks a session to move: the member
// with client address to, or, when to is empty, another member chosen by
// spare capacity (pool.Pick).
func moveTarget(n *pool.Runtime, to string) (pool.Member, error) {
	members := n.Membership()
	if to == "" {
		m, ok := members.Pick(n.Name())
		if !ok {
			return m, ErrNoMember
		}
		return m, nil
	}
	m, ok := members.ByClientAddr(to)
	switch {
	case !ok:
		return m, fmt.Errorf("%w: %q", ErrUnknownMember, to)
	case m.Draining:
		return m, fmt.Errorf("%w: %s", ErrMemberDraining, m.Name)
	case m.Name == n.Name():
		return m, fmt.Errorf("%w: %s is this member", ErrNoMember, m.Name)
	}
	return m, nil
}
