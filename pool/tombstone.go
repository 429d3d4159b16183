package pool

import (
	"context"
	"sync"
	"time"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
)

// Tombstone remembers where a session went, to redirect its client and the
// members it asks. Until the successor confirms that it restored the
// session, the tombstone also keeps the handover's answer: if that answer
// was lost (the successor gave up waiting for a slow member), the
// successor's next request gets it again instead of finding the session
// gone from everywhere.
type Tombstone struct {
	Member, Addr string      // the member that has the session, where clients reach it
	Epoch        uint64      // the epoch it has the session at
	Secret       auth.Secret // the session's: a redirect goes only to a client that proves it
	until        time.Time

	// The unconfirmed handover, nil once settled.
	rec      *snapshot.Record
	reply    *handoverReply
	handedAt time.Time
}

// Redirect is the answer to a client that missed the move.
func (t Tombstone) Redirect() wire.Refused {
	return wire.Refused{Code: wire.CodeMoved, Reason: "the session moved", RedirectName: t.Member, RedirectAddr: t.Addr}
}

const (
	tombstoneLife = 5 * time.Minute
	// tombstoneSweep is how often expired tombstones are removed.
	tombstoneSweep = 10 * time.Second
)

// tombstones are the sessions a member handed over.
type tombstones struct {
	mu     sync.Mutex
	moved  map[[wire.SessionIDLen]byte]*Tombstone
	swept  time.Time     // when expired tombstones were last removed
	settle time.Duration // how long an unconfirmed handover may be asked for again
}

func (ts *tombstones) init(settle time.Duration) {
	ts.moved = make(map[[wire.SessionIDLen]byte]*Tombstone)
	ts.settle = settle
}

// bury records that a session moved to another member, with the handover's
// answer until the successor confirms it.
func (ts *tombstones) bury(id [wire.SessionIDLen]byte, to Member, epoch uint64, rec *snapshot.Record, reply handoverReply) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := time.Now()
	if now.Sub(ts.swept) > tombstoneSweep {
		ts.swept = now
		for k, t := range ts.moved {
			if now.After(t.until) {
				delete(ts.moved, k)
			}
		}
	}
	ts.moved[id] = &Tombstone{Member: to.Name, Addr: to.ClientAddr, Epoch: epoch, until: now.Add(tombstoneLife),
		Secret: auth.Secret(rec.Secret), rec: rec, reply: &reply, handedAt: now}
}

// MovedTo returns where a session went, if it left this member.
func (n *Runtime) MovedTo(id [wire.SessionIDLen]byte) (Tombstone, bool) {
	ts := &n.tombs
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.moved[id]
	if !ok {
		return Tombstone{}, false
	}
	if time.Now().After(t.until) {
		delete(ts.moved, id)
		return Tombstone{}, false
	}
	return *t, true
}

// settled forgets the answer of a handover its successor confirmed. Only
// the successor, the member named by the tombstone, settles it: a settle
// from any other member (one confused about who has the session) changes
// nothing, and settled reports false.
func (ts *tombstones) settled(id [wire.SessionIDLen]byte, epoch uint64, from string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.moved[id]
	if !ok || t.Epoch != epoch || t.Member != from {
		return false
	}
	t.rec, t.reply = nil, nil
	return true
}

// superseded forgets the answer of a handover once a member claimed the
// session at a newer epoch: a successor restoring it from that answer
// would be fenced at once, so nobody is to ask for it again. It reports
// whether an answer was forgotten.
func (ts *tombstones) superseded(id [wire.SessionIDLen]byte, epoch uint64) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t, ok := ts.moved[id]; ok && t.reply != nil && t.Epoch < epoch {
		t.rec, t.reply = nil, nil
		return true
	}
	return false
}

// Unsettled counts the handovers not confirmed yet whose successor may
// still ask again: a member that leaves waits for them.
func (n *Runtime) Unsettled() int {
	ts := &n.tombs
	ts.mu.Lock()
	defer ts.mu.Unlock()
	k := 0
	for _, t := range ts.moved {
		if t.reply != nil && time.Since(t.handedAt) < ts.settle {
			k++
		}
	}
	return k
}

func (n *Runtime) handleSettle(_ context.Context, from string, decode func(any) error) (any, error) {
	var req settleRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	if !n.tombs.settled(req.Session, req.Epoch, from) {
		n.log.Debug("mtcp: a settle that matches no handover to its sender ignored", "member", from, "epoch", req.Epoch)
		return nil, nil
	}
	n.noteMoved()
	return nil, nil
}

// settleHandover tells the member that handed a session over that it can
// forget it (in the background: the session does not wait for it).
func (n *Runtime) settleHandover(origin Member, session [wire.SessionIDLen]byte, epoch uint64) {
	n.background(func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.HandshakeTimeout)
		defer cancel()
		err := n.call(ctx, origin.ControlAddr, KindSettle, settleRequest{Session: session, Epoch: epoch}, nil)
		if err != nil {
			n.log.Debug("mtcp: confirming a handover", "member", origin.Name, "err", err)
		}
	})
}
