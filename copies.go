package mtcp

import (
	"slices"
	"time"

	"github.com/migratory/mtcp/snapshot"
)

// The session's side of the copies of its checkpoints on other members:
// which checkpoints go, and which have their copies. The rounds themselves
// (where the copies go, retries, fencing by replicas) are the pool
// runtime's (pool.Copies).

// copyState is what a server session knows of the copies of its
// checkpoints (guarded by Conn.mu).
type copyState struct {
	done    map[uint64]bool // seq -> the checkpoint has all its copies (nil until one has)
	sending map[uint64]bool // seq -> being copied now
}

// copyStart gives a new session its implicit checkpoint, (no state, no
// input consumed, no output written), and copies it to the session's
// replicas before the client is welcomed (waiting until deadline at most):
// until its application's first checkpoint is copied, a crash of this
// member restores the session from its start, from the client's input.
func (c *Conn) copyStart(deadline time.Time) {
	s := c.server
	c.mu.Lock()
	s.ckpts = []*snapshot.Record{{
		Session: c.id, Epoch: s.epoch, Seq: 0, Secret: snapshot.Secret(c.secret),
		Params: s.params, Origin: s.member.Name(),
	}}
	c.copyLocked()
	c.mu.Unlock()
	s.copies.WaitRound(deadline)
}

// copiesFailing reports whether the last copy round did not get every
// copy it asked for.
func (s *serverSide) copiesFailing() bool { return s.copies != nil && s.copies.Failing() }

// copiedLocked reports whether a checkpoint has the copies failover
// needs: all Config.Replicas of them, confirmed.
func (s *serverSide) copiedLocked(r *snapshot.Record) bool {
	return s.copies == nil || s.copied.done[r.Seq]
}

// copyLocked asks for the newest checkpoint (and, after a change of
// members, the durable one) to be copied to the session's replicas.
func (c *Conn) copyLocked() {
	s := c.server
	if s == nil || s.copies == nil || c.ended || len(s.ckpts) == 0 {
		return
	}
	s.copies.Kick()
}

// copySource is a server session as the copier of its checkpoints sees it.
type copySource struct{ c *Conn }

// CopyRound picks the checkpoints of a round (see pool.CopySource).
func (cs copySource) CopyRound(everything bool) (recs []*snapshot.Record, keep []uint64, durable *snapshot.Record) {
	c := cs.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.server
	if c.ended || len(s.ckpts) == 0 {
		return nil, nil, nil
	}
	cp := &s.copied
	newest := s.ckpts[len(s.ckpts)-1]
	if everything && s.durable != nil && s.durable != newest {
		recs = append(recs, s.durable)
	}
	pick := newest
	if !everything {
		pick = s.nextToCopyLocked(c)
	}
	if !cp.done[pick.Seq] || everything {
		recs = append(recs, pick)
	}
	if len(recs) == 0 {
		return nil, nil, nil
	}
	if cp.sending == nil {
		cp.sending = map[uint64]bool{}
	}
	for _, rec := range recs {
		cp.sending[rec.Seq] = true
	}
	// The replicas keep what this member may restore from: the durable
	// checkpoint and those copied since (one of them becomes durable next).
	for _, rec := range s.ckpts {
		if rec == s.durable || cp.done[rec.Seq] || cp.sending[rec.Seq] {
			keep = append(keep, rec.Seq)
		}
	}
	if s.durable != nil && s.durable != newest && !slices.Contains(recs, s.durable) {
		durable = s.durable
	}
	return recs, keep, durable
}

// CopyDone takes a round's result (see pool.CopySource).
func (cs copySource) CopyDone(copied []uint64, failed bool, staleBy string) {
	c := cs.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.server
	clear(s.copied.sending)
	if staleBy != "" {
		if !c.ended {
			c.log.Warn("mtcp: session fenced: a replica knows a newer epoch", "replica", staleBy, "epoch", s.epoch)
			c.terminateLocked(&SessionMovedError{SessionID: c.idStr, To: "another member"})
		}
		return
	}
	if s.copied.done == nil && len(copied) > 0 {
		s.copied.done = make(map[uint64]bool)
	}
	for _, seq := range copied {
		s.copied.done[seq] = true
	}
	c.advanceDurableLocked()
	if !failed && !c.ended && !s.copied.done[s.ckpts[len(s.ckpts)-1].Seq] {
		// The round copied an older checkpoint (nextToCopyLocked), or a
		// newer one came meanwhile: the newest goes next.
		c.copyLocked()
	}
}

// nextToCopyLocked picks the checkpoint a round copies: the newest, unless
// its output lies beyond the client's window and a newer one than the
// durable within it has no copies yet. Output beyond the window waits for
// the client's application to read, and so does that checkpoint's
// durability; the one within it becomes durable as soon as the client has
// its output, and lets the client free the input before it (see
// durablePendingLocked).
func (s *serverSide) nextToCopyLocked(c *Conn) *snapshot.Record {
	newest := s.ckpts[len(s.ckpts)-1]
	limit := c.st.PeerLimit()
	if newest.OutPos <= limit {
		return newest
	}
	for i := len(s.ckpts) - 2; i >= 0; i-- {
		r := s.ckpts[i]
		if r.OutPos > limit {
			continue
		}
		if r == s.durable || s.copied.done[r.Seq] || (s.durable != nil && r.Seq < s.durable.Seq) {
			break
		}
		return r
	}
	return newest
}
