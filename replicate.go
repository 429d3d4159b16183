package mtcp

import (
	"context"
	"errors"
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
	retry      *time.Timer
}

const (
	replicateTimeout = 2 * time.Second
	replicateRetry   = 200 * time.Millisecond
)

// replicatedLocked reports whether a checkpoint has the copies failover needs.
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
	if r.inFlight {
		r.again = true
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
	go c.replicate(recs)
}

// replicate sends records to the replicas chosen for the session now.
func (c *Conn) replicate(recs []*snapshot.Record) {
	s := c.server
	n := s.node
	targets := n.pool.Replicas(c.idStr, n.replicas)
	ok := make([]bool, len(recs))
	stale := ""
	for i, rec := range recs {
		b, err := rec.Marshal()
		if err != nil {
			c.log.Error("mtcp: encoding a checkpoint", "err", err)
			continue
		}
		acks, by := n.copyTo(targets, b)
		if by != "" {
			stale = by
			break
		}
		ok[i] = acks >= len(targets) // as many copies as members can hold them
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &s.repl
	r.inFlight = false
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
	c.advanceDurableLocked()
	switch {
	case c.terminated:
	case failed:
		// A replica did not answer: try again soon (a change of members
		// also starts a new round).
		r.everything = true
		if r.retry == nil {
			r.retry = time.AfterFunc(replicateRetry, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.replicateLocked()
			})
		} else {
			r.retry.Reset(replicateRetry)
		}
	case r.again:
		r.again = false
		c.replicateLocked()
	}
}

// copyTo stores a checkpoint on every target at once. It returns how many
// took it, and the name of a target that refused it for a newer epoch.
func (n *node) copyTo(targets []pool.Member, rec []byte) (acks int, staleBy string) {
	ctx, cancel := context.WithTimeout(context.Background(), replicateTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.rpc.Call(ctx, t.ControlAddr, kindReplicate, replicateRequest{Record: rec}, nil)
			mu.Lock()
			defer mu.Unlock()
			var re *transport.RemoteError
			switch {
			case err == nil:
				acks++
			case errors.As(err, &re) && re.Code == codeStale:
				staleBy = t.Name
			default:
				n.ln.log.Debug("mtcp: replicating a checkpoint failed", "to", t.Name, "err", err)
			}
		}()
	}
	wg.Wait()
	return acks, staleBy
}

// forgetReplicas tells the session's replicas it ended (best effort).
func (c *Conn) forgetReplicas() {
	s := c.server
	n := s.node
	if n == nil || n.replicas == 0 {
		return
	}
	req := forgetRequest{Session: c.id, Epoch: s.epoch}
	targets := n.pool.Replicas(c.idStr, n.replicas)
	n.background(func() {
		ctx, cancel := context.WithTimeout(context.Background(), replicateTimeout)
		defer cancel()
		for _, t := range targets {
			_ = n.rpc.Call(ctx, t.ControlAddr, kindForget, req, nil)
		}
	})
}
