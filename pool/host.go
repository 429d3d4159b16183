package pool

import (
	"context"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
)

// Host is what a Runtime needs of the listener whose sessions it serves:
// package mtcp implements it. Its methods are safe for concurrent use.
type Host interface {
	// Session returns the live session with id.
	Session(id [wire.SessionIDLen]byte) (Session, bool)
	// Sessions returns the live sessions.
	Sessions() []Session
	// SessionCount is len(Sessions()), without building the list.
	SessionCount() int
	// Draining reports whether the listener drains (it takes no sessions).
	Draining() bool
}

// Session is one server session, as a Runtime sees it: it reaches the
// session's state only through these methods, which are safe for
// concurrent use and take the session's own lock.
type Session interface {
	// ID is the session's id.
	ID() [wire.SessionIDLen]byte
	// Secret is the session's secret, which checks its client's proofs.
	Secret() auth.Secret
	// Epoch is the session's epoch on this member.
	Epoch() uint64
	// HandOver gives the session to the member named successor for the
	// client whose proven request is req: it picks the newest checkpoint
	// the client can resume from, calls commit with it and the new epoch
	// (before anything else can see the session gone), and ends the
	// session here. It fails with an error carrying a control-plane code
	// when the session cannot be handed over, and with ctx's error when
	// ctx ended first (the successor gave up: the session stays).
	HandOver(ctx context.Context, req *HandoverRequest, successor string,
		commit func(rec *snapshot.Record, epoch uint64)) error
	// Fence ends the session if epoch is newer than its own: the member
	// named by took it over.
	Fence(epoch uint64, by string)
	// AskMove asks the session's client to move as m says; it reports
	// false if the session cannot move now (its application does not
	// checkpoint, or it ended). The session tells its client when it sits
	// at a checkpoint boundary, or after a bounded wait.
	AskMove(m wire.Move) bool
	// MembersChanged tells the session that the member list its client is
	// to be sent changed (news), or that the members that may hold its
	// copies may have (topology).
	MembersChanged(news, topology bool)
	// Ended reports whether the session ended.
	Ended() bool
}
