package mtcp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
	"github.com/migratory/mtcp/transport"
)

// Control-plane request kinds.
const kindHandover = "handover"

// handoverRequest asks the member serving a session to hand it over. It
// carries the client's proof, which only the holder of the session secret
// can check: a member never gives a session away to a request its client
// did not sign.
type handoverRequest struct {
	Session     [wire.SessionIDLen]byte `msgpack:"id"`
	ClientNonce [wire.NonceLen]byte     `msgpack:"cn"`
	ServerNonce [wire.NonceLen]byte     `msgpack:"sn"`
	MAC         [wire.MACLen]byte       `msgpack:"mac"`
	Epoch       uint64                  `msgpack:"ep"` // the epoch, attempt and origin the client's HELLO named
	Attempt     uint64                  `msgpack:"at"`
	Origin      string                  `msgpack:"or"`
	Received    uint64                  `msgpack:"rcv"`
	Limit       uint64                  `msgpack:"lim"`
	Release     uint64                  `msgpack:"rel"`
	Retained    uint64                  `msgpack:"ret"`
	Written     uint64                  `msgpack:"wr"`
	Known       []uint64                `msgpack:"known"` // checkpoint positions the client can check
}

// proof rebuilds the client's PROOF fields, which its MAC covers.
func (r *handoverRequest) proof() wire.Proof {
	return wire.Proof{Positions: r.positions(), Known: r.Known}
}

// signed reports whether the client's proof carried by r checks out with
// the session secret.
func (r *handoverRequest) signed(secret auth.Secret) bool {
	rs := auth.Resume{Session: r.Session, ClientNonce: r.ClientNonce, ServerNonce: r.ServerNonce,
		Epoch: r.Epoch, Attempt: r.Attempt, Origin: r.Origin}
	return auth.Equal(r.MAC, rs.ClientMAC(secret, r.proof().Fields()))
}

// knows reports whether the client can check regenerated output from out.
func (r *handoverRequest) knows(out uint64) bool {
	return out == 0 || slices.Contains(r.Known, out)
}

func (r *handoverRequest) positions() wire.Positions {
	return wire.Positions{Received: r.Received, Limit: r.Limit, Release: r.Release, Retained: r.Retained, Written: r.Written}
}

// handoverReply carries the checkpoint the successor restores and the
// session's new epoch.
type handoverReply struct {
	Record []byte `msgpack:"rec"`
	Epoch  uint64 `msgpack:"e"`
}

// Control-plane error codes, mapped to REFUSED codes for the client.
const (
	codeMoved      = "moved"       // Message: "name addr" of the member that has it
	codeUnknown    = "unknown"     // no such session here
	codeBadProof   = "bad_proof"   // the client's proof does not check out
	codeNotMovable = "not_movable" // no checkpoint the client can resume from
)

type controlError struct{ code, msg string }

func (e *controlError) Error() string         { return e.msg } // the code travels apart
func (e *controlError) TransportCode() string { return e.code }

func (n *node) registerHandlers() {
	n.ctl.Handle(kindHandover, n.handleHandover)
	n.ctl.Handle(kindSettle, n.handleSettle)
}

// handleHandover runs on the member serving a session when another member
// asks for it: it checks the client's proof, picks the newest checkpoint the
// client can resume from, freezes the session and forgets it. A request
// whose caller gave up before the handover is refused: the session stays.
// The successor's next request gets a handover it did not confirm again.
func (n *node) handleHandover(ctx context.Context, from string, decode func(any) error) (any, error) {
	var req handoverRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	successor, ok := n.pool.Member(from)
	if !ok {
		return nil, &controlError{codeUnknown, "the asking member " + from + " is not in the pool"}
	}
	c := n.ln.session(req.Session)
	if c == nil {
		if t, ok := n.movedTo(req.Session); ok {
			if !req.signed(t.secret) { // where it went is for its client only
				return nil, &controlError{codeBadProof, "the client's proof does not check out"}
			}
			if t.node == from && t.reply != nil {
				return n.handOverAgain(t, req)
			}
			return nil, &controlError{codeMoved, t.node + " " + t.addr}
		}
		return nil, &controlError{codeUnknown, "no such session"}
	}
	pos := req.positions()
	if !req.signed(c.secret) {
		c.log.Warn("mtcp: handover with a bad client proof refused", "from", from)
		return nil, &controlError{codeBadProof, "the client's proof does not check out"}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.server
	if c.terminated {
		return nil, &controlError{codeUnknown, "the session ended"}
	}
	if !s.newAttemptLocked(req.Attempt) {
		// The client gave this attempt up and resumed here since: the
		// positions it carries are not the client's anymore.
		return nil, &controlError{codeStale, "a newer resume of the session's client reached this member"}
	}
	if !s.explicit {
		return nil, &controlError{codeNotMovable, "the application does not checkpoint"}
	}
	rec := snapshot.Choose(s.ckpts, pos.Received, pos.Retained, req.knows)
	if rec == nil {
		return nil, &controlError{codeNotMovable, fmt.Sprintf(
			"no checkpoint fits the client (received %d, retains input from %d)", pos.Received, pos.Retained)}
	}
	b, err := rec.Marshal()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		// The successor gave up: it will not restore the session, which
		// goes on here (its client resumes here or asks again).
		c.log.Info("mtcp: handover request came too late", "to", successor.Name, "err", err)
		return nil, err
	}
	epoch := s.epoch + 1
	reply := handoverReply{Record: b, Epoch: epoch}
	n.bury(c.id, successor, epoch, rec, reply)
	if n.replicas > 0 {
		// Keep a copy, as a replica of the successor's epoch, until the
		// successor's own copies are made: if it crashed at once, this one
		// is where its client's session would be taken from.
		keep := rec.Clone()
		keep.Epoch, keep.Origin = epoch, successor.Name
		if err := n.store.Claim(c.id, epoch, successor.Name); err == nil {
			_ = n.store.Put(keep)
		}
	}
	c.log.Info("mtcp: session handed over", "to", successor.Name, "epoch", epoch,
		"checkpoint", rec.Seq, "in", rec.InPos, "out", rec.OutPos)
	c.terminateLocked(&SessionMovedError{SessionID: c.idStr, To: successor.Name})
	return reply, nil
}

// handOverAgain answers a successor that asks again for a session this
// member handed it: the first answer was lost on the way.
func (n *node) handOverAgain(t tombstone, req handoverRequest) (any, error) {
	if !req.signed(t.rec.Secret) {
		return nil, &controlError{codeBadProof, "the client's proof does not check out"}
	}
	if snapshot.Choose([]*snapshot.Record{t.rec}, req.Received, req.Retained, req.knows) == nil {
		return nil, &controlError{codeNotMovable, fmt.Sprintf(
			"the handed-over checkpoint does not fit the client (received %d, retains input from %d)", req.Received, req.Retained)}
	}
	n.ln.log.Info("mtcp: handover answered again", "session", fmt.Sprintf("%x", req.Session), "to", t.node, "epoch", t.epoch)
	return *t.reply, nil
}

// ErrMigrated is wrapped by *SessionMovedError: the session now runs on another member.
var ErrMigrated = errors.New("mtcp: session moved to another member")

// SessionMovedError is what Read and Write return on the member a session
// left. It matches ErrMigrated with errors.Is.
type SessionMovedError struct {
	SessionID string
	To        string // the member that has the session now
}

func (e *SessionMovedError) Error() string {
	return fmt.Sprintf("mtcp: session %s moved to member %s", e.SessionID, e.To)
}

// Is reports whether target is ErrMigrated.
func (e *SessionMovedError) Is(target error) bool { return target == ErrMigrated }

// handoverError turns a failed handover call into the REFUSED the client gets.
func handoverError(err error) *wire.Refused {
	var re *transport.RemoteError
	if !errors.As(err, &re) {
		return &wire.Refused{Code: wire.CodeInternal, Reason: "the session's member did not answer: " + err.Error()}
	}
	switch re.Code {
	case codeMoved:
		name, addr, _ := strings.Cut(re.Message, " ")
		return &wire.Refused{Code: wire.CodeMoved, Reason: "the session moved", RedirectName: name, RedirectAddr: addr}
	case codeUnknown:
		return &wire.Refused{Code: wire.CodeUnknownSession, Reason: re.Message}
	case codeBadProof:
		return &wire.Refused{Code: wire.CodeBadProof, Reason: re.Message}
	case codeNotMovable:
		return &wire.Refused{Code: wire.CodeNotMovable, Reason: re.Message}
	}
	return &wire.Refused{Code: wire.CodeInternal, Reason: re.Error()}
}
