package mtcp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
)

// Control-plane kinds of the replicas.
const (
	kindReplicate = "replicate" // a member stores a copy of a checkpoint of one of its sessions
	kindFetch     = "fetch"     // a member taking over a session asks for its checkpoints
	kindClaim     = "claim"     // a member taking over a session fences older epochs
	kindForget    = "forget"    // a session ended: drop its checkpoints
	kindEpoch     = "epoch"     // a member whose client is away asks whether its session was taken over
)

const codeStale = "stale_epoch" // a newer epoch of the session is known

type replicateRequest struct {
	Record []byte   `msgpack:"rec"`
	Keep   []uint64 `msgpack:"keep"` // the checkpoints (seq) the member may still restore from
}

// fetchReply carries every checkpoint a member holds of a session, and the
// newest epoch it knows of the session.
type fetchReply struct {
	Records [][]byte `msgpack:"recs"`
	Epoch   uint64   `msgpack:"e"`
}

type claimRequest struct {
	Session [wire.SessionIDLen]byte `msgpack:"id"`
	Epoch   uint64                  `msgpack:"e"`
}

// epochQuery asks for the newest epoch a member knows of a session.
type epochQuery struct {
	Session [wire.SessionIDLen]byte `msgpack:"id"`
}

type epochReply struct {
	Epoch uint64 `msgpack:"e"`
}

type forgetRequest struct {
	Session [wire.SessionIDLen]byte `msgpack:"id"`
	Epoch   uint64                  `msgpack:"e"`
}

// replicaKeep bounds the checkpoints of a session a replica keeps; its
// member says which (the durable one and those copied since).
const replicaKeep = maxCheckpoints + 2

func (n *node) registerReplicaHandlers() {
	n.ctl.Handle(kindReplicate, n.handleReplicate)
	n.ctl.Handle(kindFetch, n.handleFetch)
	n.ctl.Handle(kindClaim, n.handleClaim)
	n.ctl.Handle(kindForget, n.handleForget)
	n.ctl.Handle(kindEpoch, n.handleEpoch)
}

// handleEpoch tells the newest epoch this member knows of a session.
func (n *node) handleEpoch(_ context.Context, _ string, decode func(any) error) (any, error) {
	var req epochQuery
	if err := decode(&req); err != nil {
		return nil, err
	}
	return epochReply{Epoch: n.store.Epoch(req.Session)}, nil
}

// probeEpoch asks the session's replicas whether another member took the
// session over (a newer epoch), and fences it here if one did.
func (n *node) probeEpoch(c *Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), replicateTimeout)
	defer cancel()
	for _, m := range n.pool.Replicas(c.idStr, n.replicas) {
		var rep epochReply
		if err := n.rpc.Call(ctx, m.ControlAddr, kindEpoch, epochQuery{Session: c.id}, &rep); err != nil {
			n.ln.log.Debug("mtcp: asking a replica for the session's epoch", "to", m.Name, "err", err)
			continue
		}
		c.fenced(rep.Epoch, m.Name) // a no-op unless rep.Epoch is newer
	}
}

// confirmEpochTimeout bounds how long a resume waits for the session's
// replicas to confirm its epoch.
const confirmEpochTimeout = time.Second

// confirmEpoch asks the session's replicas, before a resume is answered,
// whether another member took the session over at a newer epoch (while
// this member was stalled or cut off): then the session is fenced here and
// the resume refused. A resume that no replica answers is refused too (the
// client tries again, or another member): serving it could serve an epoch
// another member has already replaced.
func (n *node) confirmEpoch(c *Conn) error {
	targets := n.pool.Replicas(c.idStr, n.replicas)
	if len(targets) == 0 {
		return nil
	}
	c.mu.Lock()
	ours := c.server.epoch
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), confirmEpochTimeout)
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
			err := n.rpc.Call(ctx, m.ControlAddr, kindEpoch, epochQuery{Session: c.id}, &rep)
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
			c.fenced(a.epoch, a.name)
			return &refusal{wire.Refused{Code: wire.CodeStaleEpoch, Reason: "another member holds the session"}}
		}
	}
	if answered == 0 {
		return &refusal{wire.Refused{Code: wire.CodeBusy,
			Reason: fmt.Sprintf("the session's replicas cannot confirm its epoch: %v", lastErr)}}
	}
	return nil
}

// handleReplicate stores a copy of another member's checkpoint.
func (n *node) handleReplicate(_ context.Context, from string, decode func(any) error) (any, error) {
	var req replicateRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	rec, err := snapshot.Unmarshal(req.Record, 0)
	if err != nil {
		return nil, err
	}
	if rec.Origin != from {
		return nil, &controlError{codeBadProof, fmt.Sprintf("%s sent a checkpoint of %s's session", from, rec.Origin)}
	}
	if err := n.store.Put(rec); err != nil {
		if errors.Is(err, snapshot.ErrStaleEpoch) {
			return nil, &controlError{codeStale, err.Error()}
		}
		return nil, err
	}
	n.store.Retain(rec.Session, append(req.Keep, rec.Seq))
	return struct{}{}, nil
}

// handleFetch gives the checkpoints of a session to a member taking it over,
// if the request carries a valid proof of the session's client.
func (n *node) handleFetch(_ context.Context, from string, decode func(any) error) (any, error) {
	var req handoverRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	recs := n.store.Records(req.Session)
	if len(recs) == 0 {
		return nil, &controlError{codeUnknown, "no checkpoint of the session here"}
	}
	if !req.signed(recs[0].Secret) {
		n.ln.log.Warn("mtcp: checkpoint fetch with a bad client proof refused", "from", from)
		return nil, &controlError{codeBadProof, "the client's proof does not check out"}
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
func (n *node) handleClaim(_ context.Context, from string, decode func(any) error) (any, error) {
	var req claimRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	if err := n.store.Claim(req.Session, req.Epoch, from); err != nil {
		return nil, &controlError{codeStale, err.Error()}
	}
	// A session this member still serves at an older epoch is fenced too.
	c := n.ln.session(req.Session)
	if c != nil {
		c.fenced(req.Epoch, from)
	}
	return struct{}{}, nil
}

// handleForget drops the checkpoints of a session that ended.
func (n *node) handleForget(_ context.Context, from string, decode func(any) error) (any, error) {
	var req forgetRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	// The session's epoch stays known, to fence a member that lost it.
	n.store.End(req.Session, req.Epoch, from)
	return struct{}{}, nil
}

// sweepReplicas forgets the checkpoints of sessions nobody updated for long
// (their member and client are gone).
func (n *node) sweepReplicas(every, idle time.Duration) {
	defer n.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			if k := n.store.Sweep(time.Now().Add(-idle)); k > 0 {
				n.ln.log.Info("mtcp: dropped checkpoints of idle sessions", "sessions", k)
			}
		}
	}
}

// fenced ends a session that another member took over at a newer epoch.
func (c *Conn) fenced(epoch uint64, by string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.terminated || c.server == nil || c.server.epoch >= epoch {
		return
	}
	c.log.Warn("mtcp: session fenced: another member took it over", "by", by, "epoch", epoch, "ours", c.server.epoch)
	c.terminateLocked(&SessionMovedError{SessionID: c.idStr, To: by})
}
