package mtcp

import (
	"context"
	"time"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/snapshot"
)

// tombstone remembers where a session went, to redirect its client and the
// members it asks. Until the successor confirms that it restored the
// session, the tombstone also keeps the handover's answer: if that answer
// was lost (the successor gave up waiting for a slow member), the
// successor's next request gets it again instead of finding the session
// gone from everywhere.
type tombstone struct {
	node, addr string
	epoch      uint64
	until      time.Time
	secret     auth.Secret // the session's: a redirect goes only to a client that proves it

	// The unconfirmed handover, nil once settled.
	rec      *snapshot.Record
	reply    *handoverReply
	handedAt time.Time
}

// redirect is the answer to a client that missed the move.
func (t tombstone) redirect() *refusal {
	return &refusal{wire.Refused{Code: wire.CodeMoved, Reason: "the session moved",
		RedirectName: t.node, RedirectAddr: t.addr}}
}

const (
	tombstoneLife = 5 * time.Minute
	// tombstoneSweep is how often expired tombstones are removed.
	tombstoneSweep = 10 * time.Second
)

// bury records that a session moved to another member, with the handover's
// answer until the successor confirms it.
func (n *node) bury(id [wire.SessionIDLen]byte, to pool.Member, epoch uint64, rec *snapshot.Record, reply handoverReply) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	if now.Sub(n.swept) > tombstoneSweep {
		n.swept = now
		for k, t := range n.moved {
			if now.After(t.until) {
				delete(n.moved, k)
			}
		}
	}
	n.moved[id] = &tombstone{node: to.Name, addr: to.ClientAddr, epoch: epoch, until: now.Add(tombstoneLife),
		secret: rec.Secret, rec: rec, reply: &reply, handedAt: now}
}

// movedTo returns where a session went, if it left this member.
func (n *node) movedTo(id [wire.SessionIDLen]byte) (tombstone, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.moved[id]
	if !ok {
		return tombstone{}, false
	}
	if time.Now().After(t.until) {
		delete(n.moved, id)
		return tombstone{}, false
	}
	return *t, true
}

// settle forgets the answer of a handover its successor confirmed.
func (n *node) settle(id [wire.SessionIDLen]byte, epoch uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.moved[id]; ok && t.epoch == epoch {
		t.rec, t.reply = nil, nil
	}
}

// unsettled counts the handovers not confirmed yet whose successor may
// still ask again (within settleWait of the handover).
func (n *node) unsettled() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for _, t := range n.moved {
		if t.reply != nil && time.Since(t.handedAt) < n.settleWait() {
			k++
		}
	}
	return k
}

// settleWait bounds how long a member that hands sessions over and leaves
// (Drain) waits for the successors' confirmations.
func (n *node) settleWait() time.Duration { return 2 * n.ln.cfg.HandshakeTimeout }

// Control-plane request kind: a successor confirms a handover.
const kindSettle = "settle"

// settleRequest confirms that the successor restored a session handed over
// at epoch.
type settleRequest struct {
	Session [wire.SessionIDLen]byte `msgpack:"id"`
	Epoch   uint64                  `msgpack:"e"`
}

func (n *node) handleSettle(_ context.Context, _ string, decode func(any) error) (any, error) {
	var req settleRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	n.settle(req.Session, req.Epoch)
	return nil, nil
}

// confirmHandover tells the member that handed a session over that it
// can forget it (in the background: the session does not wait for it).
func (n *node) confirmHandover(origin pool.Member, session [wire.SessionIDLen]byte, epoch uint64) {
	n.background(func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.ln.cfg.HandshakeTimeout)
		defer cancel()
		err := n.rpc.Call(ctx, origin.ControlAddr, kindSettle, settleRequest{Session: session, Epoch: epoch}, nil)
		if err != nil {
			n.ln.log.Debug("mtcp: confirming a handover", "member", origin.Name, "err", err)
		}
	})
}
