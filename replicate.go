package mtcp

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/snapshot"
	"github.com/migratory/mtcp/transport"
)

// replication is a server session's copying of its checkpoints to other
// members (guarded by Conn.mu).
type replication struct {
	inFlight   bool
	again      bool            // a newer checkpoint came while a copy was in flight
	everything bool            // the replica set changed: send the durable one too
	done       map[uint64]bool // seq -> the checkpoint has its copies
	sending    map[uint64]bool // seq -> being copied now
	targets    string          // the replicas of the last copy, to notice a change
	retry      *time.Timer
	roundDone  chan struct{} // closed when the copy round in flight ends
	failing    bool          // the last copy round did not get every copy asked for
	waiting    bool          // a retry is due: rounds wait for it
	retryIn    time.Duration // the wait before the next round after a failed one
}

const (
	replicateTimeout = 2 * time.Second
	// A failed copy round is tried again after replicateRetry, doubling
	// after each failure up to replicateRetryMax: copies that cannot be had
	// (no member can hold them, or they refuse) cost a few calls a minute.
	replicateRetry    = 200 * time.Millisecond
	replicateRetryMax = 10 * time.Second
)

// copyStart gives a new session its implicit checkpoint, (no state, no
// input consumed, no output written), and copies it to the session's
// replicas before the client is welcomed (waiting until deadline at most):
// until its application's first checkpoint is copied, a crash of this
// member restores the session from its start, from the client's input.
func (c *Conn) copyStart(deadline time.Time) {
	s := c.server
	c.mu.Lock()
	s.ckpts = []*snapshot.Record{{
		Session: c.id, Epoch: s.epoch, Seq: 0, Secret: c.secret,
		Params: s.params, Origin: s.node.name,
	}}
	c.replicateLocked()
	done := s.repl.roundDone
	c.mu.Unlock()
	if done == nil {
		return
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// membersChanged (Conn.mu held) makes the next round copy everything to
// whoever holds the copies now, at once: a member that came may take the
// copies that could not be had.
func (r *replication) membersChanged() {
	r.everything = true
	if r.waiting {
		r.retry.Stop()
		r.waiting = false
	}
	r.retryIn = 0
}

// replicatedLocked reports whether a checkpoint has the copies failover
// needs: all Config.Replicas of them, confirmed.
func (s *serverSide) replicatedLocked(r *snapshot.Record) bool {
	return s.node == nil || s.node.replicas == 0 || s.repl.done[r.Seq]
}

// replicateLocked starts copying the newest checkpoint (and, after a change
// of members, the durable one) to the session's replicas, one copy in flight
// at a time: checkpoints taken meanwhile are coalesced into the newest.
func (c *Conn) replicateLocked() {
	s := c.server
	if s == nil || s.node == nil || s.node.replicas == 0 || c.terminated || len(s.ckpts) == 0 {
		return
	}
	r := &s.repl
	if r.inFlight || r.waiting {
		// One round at a time; after a failed one, the next waits for its
		// retry: the newest checkpoint goes then.
		r.again = r.again || r.inFlight
		return
	}
	newest := s.ckpts[len(s.ckpts)-1]
	var recs []*snapshot.Record
	if r.everything && s.durable != nil && s.durable != newest {
		recs = append(recs, s.durable)
	}
	if !r.done[newest.Seq] || r.everything {
		recs = append(recs, newest)
	}
	r.everything = false
	if len(recs) == 0 {
		return
	}
	r.inFlight = true
	r.roundDone = make(chan struct{})
	if r.sending == nil {
		r.sending = map[uint64]bool{}
	}
	for _, rec := range recs {
		r.sending[rec.Seq] = true
	}
	// The replicas keep what this member may restore from: the durable
	// checkpoint and those copied since (one of them becomes durable next).
	var keep []uint64
	for _, rec := range s.ckpts {
		if rec == s.durable || r.done[rec.Seq] || r.sending[rec.Seq] {
			keep = append(keep, rec.Seq)
		}
	}
	var durableRec *snapshot.Record
	if s.durable != nil && s.durable != newest && !slices.Contains(recs, s.durable) {
		durableRec = s.durable
	}
	go c.replicate(recs, keep, durableRec)
}

// replicate copies records to the session's replicas.
func (c *Conn) replicate(recs []*snapshot.Record, keep []uint64, durableRec *snapshot.Record) {
	s := c.server
	n := s.node
	ok := make([]bool, len(recs))
	stale := ""
	var placedOn []string
	for i, rec := range recs {
		b, err := rec.Marshal()
		if err != nil {
			c.log.Error("mtcp: encoding a checkpoint", "err", err)
			continue
		}
		req := replicateRequest{Record: b, Keep: keep}
		if i == 0 {
			// Where the copies land decides whether the replicas changed.
			placed, by, full := n.place(c.idStr, req)
			c.mu.Lock()
			changed := strings.Join(placed, " ") != s.repl.targets
			s.repl.targets = strings.Join(placed, " ")
			c.mu.Unlock()
			if changed && durableRec != nil && rec != durableRec {
				// New replicas must hold the durable checkpoint before they
				// are told it is durable (they keep it from then on).
				if db, err := durableRec.Marshal(); err == nil {
					n.copyTo(namesOf(n, placed), replicateRequest{Record: db, Keep: keep})
				}
			}
			stale, ok[i], placedOn = by, full, placed
		} else {
			// The same members hold the others, and only if they hold
			// all the copies asked for is any of them complete.
			acks, _, by := n.copyTo(namesOf(n, placedOn), req)
			stale, ok[i] = by, ok[0] && acks == len(placedOn)
		}
		if stale != "" {
			break
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &s.repl
	r.inFlight = false
	close(r.roundDone)
	clear(r.sending)
	if stale != "" {
		if !c.terminated {
			c.log.Warn("mtcp: session fenced: a replica knows a newer epoch", "replica", stale, "epoch", s.epoch)
			c.terminateLocked(&SessionMovedError{SessionID: c.idStr, To: "another member"})
		}
		return
	}
	failed := false
	for i, rec := range recs {
		if ok[i] {
			r.done[rec.Seq] = true
		} else {
			failed = true
		}
	}
	r.failing = failed
	c.advanceDurableLocked()
	switch {
	case c.terminated:
	case failed:
		// Not enough members took a copy: try again later (a change of
		// members also starts a new round).
		r.everything = true
		r.retryIn = min(max(2*r.retryIn, replicateRetry), replicateRetryMax)
		r.waiting = true
		if r.retry == nil {
			r.retry = time.AfterFunc(r.retryIn, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				r.waiting = false
				c.replicateLocked()
			})
		} else {
			r.retry.Reset(r.retryIn)
		}
	case r.again:
		r.retryIn = 0
		r.again = false
		c.replicateLocked()
	default:
		r.retryIn = 0
	}
}

// place copies a checkpoint to the session's replicas, in rendezvous order,
// passing over members that do not answer or refuse (a member that just
// died may still be listed). It returns the members that hold it, a member
// that refused it for a newer epoch, and whether it has all the copies
// asked for: fewer members than Config.Replicas to hold them is not enough.
func (n *node) place(id string, req replicateRequest) (placed []string, staleBy string, full bool) {
	var failed []string
	for round := 0; round < 4 && len(placed) < n.replicas; round++ {
		targets := n.pool.Replicas(id, n.replicas-len(placed), append(failed, placed...)...)
		if len(targets) == 0 {
			break // no more members to hold copies
		}
		_, took, by := n.copyTo(targets, req)
		if by != "" {
			return placed, by, false
		}
		placed = append(placed, took...)
		for _, t := range targets {
			if !slices.Contains(took, t.Name) {
				failed = append(failed, t.Name)
			}
		}
	}
	return placed, "", len(placed) >= n.replicas
}

// namesOf looks members up by name.
func namesOf(n *node, names []string) []pool.Member {
	out := make([]pool.Member, 0, len(names))
	for _, name := range names {
		if m, ok := n.pool.Member(name); ok {
			out = append(out, m)
		}
	}
	return out
}

// copyTo stores a checkpoint on every target at once. It returns how many
// took it and which, and the name of a target that refused it for a newer
// epoch.
func (n *node) copyTo(targets []pool.Member, req replicateRequest) (acks int, took []string, staleBy string) {
	ctx, cancel := context.WithTimeout(context.Background(), replicateTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.rpc.Call(ctx, t.ControlAddr, kindReplicate, req, nil)
			mu.Lock()
			defer mu.Unlock()
			var re *transport.RemoteError
			switch {
			case err == nil:
				acks++
				took = append(took, t.Name)
			case errors.As(err, &re) && re.Code == codeStale:
				staleBy = t.Name
			default:
				n.ln.log.Debug("mtcp: replicating a checkpoint failed", "to", t.Name, "err", err)
			}
		}()
	}
	wg.Wait()
	return acks, took, staleBy
}

// forgetReplicas tells the session's replicas it ended (best effort).
func (c *Conn) forgetReplicas() {
	s := c.server
	n := s.node
	if n == nil || n.replicas == 0 {
		return
	}
	req := forgetRequest{Session: c.id, Epoch: s.epoch}
	targets := namesOf(n, strings.Fields(s.repl.targets))
	n.background(func() {
		ctx, cancel := context.WithTimeout(context.Background(), replicateTimeout)
		defer cancel()
		for _, t := range targets {
			_ = n.rpc.Call(ctx, t.ControlAddr, kindForget, req, nil)
		}
	})
}
