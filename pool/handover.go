package pool

import (
	"context"
	"fmt"

	"github.com/migratory/mtcp/internal/poolhook"
	"github.com/migratory/mtcp/snapshot"
	"github.com/migratory/mtcp/transport"
)

// registerHandlers answers every kind of the catalogue.
func (n *Runtime) registerHandlers() {
	n.handlers = make(map[string]transport.Handler)
	for kind, h := range map[string]transport.Handler{
		KindHandover:  n.handleHandover,
		KindHandovers: n.handleHandovers,
		KindSettle:    n.handleSettle,
		KindReplicate: n.handleCopy,
		KindFetch:     n.handleFetch,
		KindClaim:     n.handleClaim,
		KindForget:    n.handleForget,
		KindEpoch:     n.handleEpoch,
		KindBatch:     n.handleBatch,
	} {
		n.handlers[kind] = poolhook.Handler(n, kind, h)
	}
	// Served once all are known: a batch's requests find their handlers.
	for kind, h := range n.handlers {
		n.ctl.Handle(kind, h)
	}
}

// handleHandover runs on the member serving a session when another member
// asks for it: the client's proof is checked, the session picks the newest
// checkpoint the client can resume from, freezes and forgets itself. A
// request whose caller gave up before the handover is refused: the session
// stays. The successor's next request gets a handover it did not confirm
// again.
func (n *Runtime) handleHandover(ctx context.Context, from string, decode func(any) error) (any, error) {
	var req HandoverRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	return n.handOver(ctx, from, req)
}

// handOver answers one handover request of the member called from.
func (n *Runtime) handOver(ctx context.Context, from string, req HandoverRequest) (handoverReply, error) {
	successor, ok := n.members.Member(from)
	if !ok {
		// Not seen yet, or seen gone for a moment (gossip under load): the
		// successor is to try again, not to take the session from the
		// replicas while this member serves it.
		return handoverReply{}, &ControlError{CodeNotMember, "the asking member " + from + " is not in the pool"}
	}
	s, ok := n.host.Session(req.Session)
	if !ok {
		if t, ok := n.MovedTo(req.Session); ok {
			if !req.Signed(t.Secret) { // where it went is for its client only
				return handoverReply{}, &ControlError{CodeBadProof, "the client's proof does not check out"}
			}
			if t.Member == from && t.reply != nil {
				return n.handOverAgain(t, req)
			}
			return handoverReply{}, &ControlError{CodeMoved, t.Member + " " + t.Addr}
		}
		return handoverReply{}, &ControlError{CodeUnknown, "no such session"}
	}
	if !req.Signed(s.Secret()) {
		n.log.Warn("mtcp: handover with a bad client proof refused", "session", fmt.Sprintf("%x", req.Session), "from", from)
		return handoverReply{}, &ControlError{CodeBadProof, "the client's proof does not check out"}
	}
	var reply handoverReply
	err := s.HandOver(ctx, &req, successor.Name, func(rec *snapshot.Record, epoch uint64) {
		b, err := rec.Marshal()
		if err != nil {
			panic(fmt.Sprintf("pool: a checkpoint that does not encode: %v", err)) // its fields are bounded
		}
		reply = handoverReply{Record: b, Epoch: epoch}
		n.tombs.bury(req.Session, successor, epoch, rec, reply)
		if n.replicas > 0 {
			// Keep a copy, as a replica of the successor's epoch, until the
			// successor's own copies are made: if it crashed at once, this
			// one is where its client's session would be taken from.
			keep := rec.Clone()
			keep.Epoch, keep.Origin = epoch, successor.Name
			if err := n.store.Claim(req.Session, epoch, successor.Name); err == nil {
				_ = n.store.Put(keep)
			}
		}
	})
	if err != nil {
		return handoverReply{}, err
	}
	n.gone.add(req.Session)
	n.noteMoved()
	return reply, nil
}

// handOverAgain answers a successor that asks again for a session this
// member handed it: the first answer was lost on the way.
func (n *Runtime) handOverAgain(t Tombstone, req HandoverRequest) (handoverReply, error) {
	if snapshot.Choose([]*snapshot.Record{t.rec}, req.Received, req.Retained, req.Knows) == nil {
		return handoverReply{}, &ControlError{CodeNotMovable, fmt.Sprintf(
			"the handed-over checkpoint does not fit the client (received %d, retains input from %d)", req.Received, req.Retained)}
	}
	n.log.Info("mtcp: handover answered again", "session", fmt.Sprintf("%x", req.Session), "to", t.Member, "epoch", t.Epoch)
	return *t.reply, nil
}
