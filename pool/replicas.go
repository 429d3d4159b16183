package pool

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
)

// The replica side: what a member does with the copies of other members'
// checkpoints it keeps, and what it answers about them.

// handleCopy stores a copy of another member's checkpoint.
func (n *Runtime) handleCopy(_ context.Context, from string, decode func(any) error) (any, error) {
	var req copyRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	rec, err := snapshot.Unmarshal(req.Record, 0)
	if err != nil {
		return nil, err
	}
	if rec.Origin != from {
		return nil, &ControlError{CodeBadProof, fmt.Sprintf("%s sent a checkpoint of %s's session", from, rec.Origin)}
	}
	known := n.store.Epoch(rec.Session)
	if err := n.store.Put(rec); err != nil {
		if errors.Is(err, snapshot.ErrStaleEpoch) {
			return nil, &ControlError{CodeStale, err.Error()}
		}
		return nil, err
	}
	n.store.Retain(rec.Session, append(req.Keep, rec.Seq))
	if rec.Epoch > known {
		// A copy of a newer epoch claims it, as KindClaim does (the store
		// took the epoch with the record): a member that took the session
		// over sends its replicas no claim apart (claimAsync).
		n.claimed(rec.Session, rec.Epoch, from)
	}
	return struct{}{}, nil
}

// handleFetch gives the checkpoints of a session to a member taking it
// over, if the request carries a valid proof of the session's client.
func (n *Runtime) handleFetch(_ context.Context, from string, decode func(any) error) (any, error) {
	var req HandoverRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	recs := n.store.Records(req.Session)
	if len(recs) == 0 {
		return nil, &ControlError{CodeUnknown, "no checkpoint of the session here"}
	}
	if !req.Signed(auth.Secret(recs[0].Secret)) {
		n.log.Warn("mtcp: checkpoint fetch with a bad client proof refused", "from", from)
		return nil, &ControlError{CodeBadProof, "the client's proof does not check out"}
	}
	rep := fetchReply{Epoch: n.store.Epoch(req.Session)}
	for _, r := range recs {
		b, err := r.Marshal()
		if err != nil {
			return nil, err
		}
		rep.Records = append(rep.Records, b)
	}
	return rep, nil
}

// handleClaim fences the epochs before a takeover's.
func (n *Runtime) handleClaim(_ context.Context, from string, decode func(any) error) (any, error) {
	var req claimRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	if err := n.store.Claim(req.Session, req.Epoch, from); err != nil {
		return nil, &ControlError{CodeStale, err.Error()}
	}
	n.claimed(req.Session, req.Epoch, from)
	return struct{}{}, nil
}

// claimed follows a claim of session at epoch by member from, taken by the
// store: a session this member still serves at an older epoch is fenced
// too, and an answer of a handover of it is not to be given again.
func (n *Runtime) claimed(session [wire.SessionIDLen]byte, epoch uint64, from string) {
	if s, ok := n.host.Session(session); ok {
		s.Fence(epoch, from)
		n.gone.add(session)
	}
	if n.tombs.superseded(session, epoch) {
		n.noteMoved()
	}
}

// handleForget drops the checkpoints of a session that ended.
func (n *Runtime) handleForget(_ context.Context, from string, decode func(any) error) (any, error) {
	var req forgetRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	// The session's epoch stays known, to fence a member that lost it.
	n.store.End(req.Session, req.Epoch, from)
	return struct{}{}, nil
}

// handleEpoch tells the newest epoch this member knows of a session.
func (n *Runtime) handleEpoch(_ context.Context, _ string, decode func(any) error) (any, error) {
	var req epochQuery
	if err := decode(&req); err != nil {
		return nil, err
	}
	return epochReply{Epoch: n.store.Epoch(req.Session)}, nil
}

// sweepReplicas forgets the checkpoints of sessions nobody updated for
// long (their member and client are gone).
func (n *Runtime) sweepReplicas(d, idle time.Duration) {
	every(&n.wg, n.stop, d, func() {
		if k := n.store.Sweep(time.Now().Add(-idle)); k > 0 {
			n.log.Info("mtcp: dropped checkpoints of idle sessions", "sessions", k)
		}
	})
}

// ProbeEpoch asks the replicas of session s, whose client is away, whether
// another member took it over (a newer epoch), and fences it if one did.
func (n *Runtime) ProbeEpoch(s Session) {
	ctx, cancel := context.WithTimeout(context.Background(), copyTimeout)
	defer cancel()
	id := s.ID()
	for _, m := range n.members.Replicas(hex.EncodeToString(id[:]), n.replicas) {
		var rep epochReply
		if err := n.call(ctx, m.ControlAddr, KindEpoch, epochQuery{Session: id}, &rep); err != nil {
			n.log.Debug("mtcp: asking a replica for the session's epoch", "to", m.Name, "err", err)
			continue
		}
		s.Fence(rep.Epoch, m.Name) // nothing unless rep.Epoch is newer
	}
}

// confirmEpochTimeout bounds how long a resume waits for the session's
// replicas to confirm its epoch, at least: half the handshake timeout if
// longer. A loaded pool answers late; a resume refused busy for it costs
// the client another handshake, and after two it tries other members,
// which take the session over from here.
const confirmEpochTimeout = time.Second

// ConfirmEpoch asks the replicas of session s, before a resume is
// answered, whether another member took it over at a newer epoch (while
// this member was stalled or cut off): then the session is fenced and the
// resume refused. A resume that no replica answers is refused too (the
// client tries again, or another member): serving it could serve an epoch
// another member has already replaced. Its errors are *Refused.
func (n *Runtime) ConfirmEpoch(s Session) error {
	id := s.ID()
	targets := n.members.Replicas(hex.EncodeToString(id[:]), n.replicas)
	if len(targets) == 0 {
		return nil
	}
	ours := s.Epoch()
	ctx, cancel := context.WithTimeout(context.Background(), max(confirmEpochTimeout, n.cfg.HandshakeTimeout/2))
	defer cancel()
	type answer struct {
		name  string
		epoch uint64
		err   error
	}
	answers := make(chan answer, len(targets))
	for _, m := range targets {
		go func() {
			var rep epochReply
			err := n.call(ctx, m.ControlAddr, KindEpoch, epochQuery{Session: id}, &rep)
			answers <- answer{m.Name, rep.Epoch, err}
		}()
	}
	answered := 0
	var lastErr error
	for range targets {
		a := <-answers
		if a.err != nil {
			lastErr = a.err
			continue
		}
		answered++
		if a.epoch > ours {
			s.Fence(a.epoch, a.name)
			return refused(wire.CodeStaleEpoch, "another member holds the session")
		}
	}
	if answered == 0 {
		return refused(wire.CodeBusy, "the session's replicas cannot confirm its epoch: %v", lastErr)
	}
	return nil
}
