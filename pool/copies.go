package pool

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
	"github.com/migratory/mtcp/transport"
)

const (
	copyTimeout = 2 * time.Second
	// A failed copy round is tried again after copyRetry, doubling
	// after each failure up to copyRetryMax: copies that cannot be had
	// (no member can hold them, or they refuse) cost a few calls a minute.
	copyRetry    = 200 * time.Millisecond
	copyRetryMax = 10 * time.Second
)

// CopySource is a session's side of the copying of its checkpoints to its
// replicas: which checkpoints go, and what came of it. Package mtcp
// implements it; its methods take the session's own lock, and Copies calls
// them without holding its own.
type CopySource interface {
	// CopyRound returns the checkpoints to copy now, the sequence numbers
	// of those the replicas may keep, and the durable checkpoint new
	// replicas must hold first (nil if none). everything says that the
	// members holding copies may have changed: the durable one goes again
	// too. No checkpoints: nothing to copy now.
	CopyRound(everything bool) (recs []*snapshot.Record, keep []uint64, durable *snapshot.Record)
	// CopyDone reports a round: the checkpoints (sequence numbers) that
	// have all their copies, whether some did not get them, and a member
	// that refused them for a newer epoch (another member took the session
	// over: the session ends).
	CopyDone(copied []uint64, failed bool, staleBy string)
}

// Copies runs the copy rounds of one session's checkpoints to the members
// chosen to hold them (rendezvous hashing over the members that take
// copies), one round at a time: checkpoints taken meanwhile are coalesced
// into the next round. A round that did not get every copy is tried again
// later, backing off, or at once when the members change.
type Copies struct {
	n   *Runtime
	id  [wire.SessionIDLen]byte
	key string // the session's id in hex: the rendezvous key
	src CopySource

	mu         sync.Mutex
	inFlight   bool          // a round runs
	again      bool          // a checkpoint came while a round ran
	everything bool          // the replica set may have changed
	waiting    bool          // a retry is due: rounds wait for it
	stopped    bool          // the session ended
	failing    bool          // the last round did not get every copy asked for
	retry      *time.Timer   // the retry of a failed round
	retryIn    time.Duration // the wait before the next retry
	roundDone  chan struct{} // closed when the round in flight ends
	holders    string        // where the copies were last placed, space-separated
	// placement is where the copies were last placed, as Pool.Placement
	// names it ("" if unknown, or if not every copy was had): a change of
	// the pool that leaves the session's placement as it is calls for no
	// new copies.
	placement   string
	placedJoins uint64 // Pool.Joins when placement was read
}

// NewCopies returns the copier of session id's checkpoints, or nil if the
// member makes no copies (Replicas 0).
func (n *Runtime) NewCopies(id [wire.SessionIDLen]byte, src CopySource) *Copies {
	if n.replicas == 0 {
		return nil
	}
	return &Copies{n: n, id: id, key: hex.EncodeToString(id[:]), src: src}
}

// Kick asks for a round: a checkpoint came. A round already running is
// followed by another; after a failed one, the retry takes it.
func (c *Copies) Kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startLocked()
}

func (c *Copies) startLocked() {
	switch {
	case c.stopped || c.waiting:
	case c.inFlight:
		c.again = true
	default:
		c.inFlight, c.again = true, false
		c.roundDone = make(chan struct{})
		everything := c.everything
		c.everything = false
		c.n.rounds.run(func() { c.round(everything) })
	}
}

// MembersChanged makes the next round copy everything to whoever holds the
// copies now, at once: a member that came may take the copies that could
// not be had. A session whose copies all went where they would go now,
// to the same joins of the same members, copies nothing: a pool of
// thousands of sessions a member does not send them all again when one
// member joins, leaves or starts draining, only those whose placement it
// changes.
func (c *Copies) MembersChanged() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.placedLocked() {
		return
	}
	c.copyEverythingLocked()
}

// placedLocked (c.mu held) reports whether every copy is placed where
// Placement says it goes now, with no round under way or due.
func (c *Copies) placedLocked() bool {
	return c.placement != "" && !c.inFlight && !c.waiting && !c.failing && !c.everything &&
		c.placement == c.n.members.Placement(c.key, c.n.replicas)
}

// copyEverythingLocked (c.mu held) starts a round that copies everything
// now.
func (c *Copies) copyEverythingLocked() {
	c.everything = true
	if c.waiting {
		c.retry.Stop()
		c.waiting = false
	}
	c.retryIn = 0
	c.startLocked()
}

// CopyAll starts a round that copies everything, as after a change of
// members: a session restored on this member makes its copies its own.
func (c *Copies) CopyAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.copyEverythingLocked()
}

// WaitRound waits until the round in flight, if any, ends, or until
// deadline.
func (c *Copies) WaitRound(deadline time.Time) {
	c.mu.Lock()
	done := c.roundDone
	running := c.inFlight
	c.mu.Unlock()
	if !running {
		return
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// Failing reports whether the last round did not get every copy it asked
// for.
func (c *Copies) Failing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failing
}

// Holders returns the members the copies were last placed on.
func (c *Copies) Holders() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Fields(c.holders)
}

// Stop ends the rounds: the session ended. With forget, its replicas are
// told to drop its copies, keeping its epoch as a fence (best effort, in
// the background).
func (c *Copies) Stop(forget bool, epoch uint64) {
	c.mu.Lock()
	c.stopped = true
	if c.retry != nil {
		c.retry.Stop()
	}
	holders := c.n.namesOf(strings.Fields(c.holders))
	c.mu.Unlock()
	if !forget {
		return
	}
	n := c.n
	req := forgetRequest{Session: c.id, Epoch: epoch}
	n.background(func() {
		ctx, cancel := context.WithTimeout(context.Background(), copyTimeout)
		defer cancel()
		for _, t := range holders {
			_ = n.call(ctx, t.ControlAddr, KindForget, req, nil)
		}
	})
}

// round runs one copy round.
func (c *Copies) round(everything bool) {
	recs, keep, durable := c.src.CopyRound(everything)
	var copied []uint64
	failed, stale := false, ""
	if len(recs) > 0 {
		copied, failed, stale = c.copy(recs, keep, durable)
		c.mu.Lock()
		c.failing = failed // before the session hears of it, for it asks
		c.mu.Unlock()
		c.src.CopyDone(copied, failed, stale)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight = false
	close(c.roundDone)
	switch {
	case c.stopped || stale != "":
	case failed:
		// Not enough members took a copy: try again later (a change of
		// members also starts a new round).
		c.everything = true
		c.retryIn = min(max(2*c.retryIn, copyRetry), copyRetryMax)
		c.waiting = true
		if c.retry == nil {
			c.retry = time.AfterFunc(c.retryIn, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.waiting = false
				c.startLocked()
			})
		} else {
			c.retry.Reset(c.retryIn)
		}
	case c.again:
		c.retryIn = 0
		c.startLocked()
	default:
		c.retryIn = 0
	}
}

// copy copies recs to the session's replicas: the first is placed in
// rendezvous order (where it lands decides whether the replicas changed,
// and new ones get the durable checkpoint first), the others go to the
// same members.
func (c *Copies) copy(recs []*snapshot.Record, keep []uint64, durable *snapshot.Record) (copied []uint64, failed bool, stale string) {
	n := c.n
	var placedOn []string
	full := false
	for i, rec := range recs {
		b, err := rec.Marshal()
		if err != nil {
			n.log.Error("mtcp: encoding a checkpoint", "err", err)
			failed = true
			continue
		}
		req := copyRequest{Record: b, Keep: keep}
		ok := false
		if i == 0 {
			var placed []string
			joins := n.members.Joins()
			placed, stale, full = n.place(c.key, req)
			slices.Sort(placed) // in the order they answered: the same members are the same holders
			c.mu.Lock()
			changed := strings.Join(placed, " ") != c.holders
			c.holders = strings.Join(placed, " ")
			c.mu.Unlock()
			if stale == "" && changed && durable != nil && rec != durable {
				// New replicas must hold the durable checkpoint before they
				// are told it is durable (they keep it from then on). One
				// that did not take it fails the round: it goes again,
				// with everything.
				db, err := durable.Marshal()
				if err == nil {
					var acks int
					acks, _, stale = n.copyTo(n.namesOf(placed), copyRequest{Record: db, Keep: keep})
					full = full && acks == len(placed)
				} else {
					full = false
				}
			}
			c.mu.Lock()
			switch {
			case !full || stale != "":
				c.placement = "" // not all placed: where the copies are is not known
			case changed || c.placement == "" || c.placedJoins != joins:
				// "" if a member joined since the copies went out.
				c.placement, c.placedJoins = n.members.placedAt(placed, joins), joins
			}
			c.mu.Unlock()
			placedOn, ok = placed, full
		} else {
			// Only if the members hold all the copies asked for is any of
			// them complete.
			acks, _, by := n.copyTo(n.namesOf(placedOn), req)
			stale, ok = by, full && acks == len(placedOn)
		}
		if stale != "" {
			return nil, true, stale
		}
		if ok {
			copied = append(copied, rec.Seq)
		} else {
			failed = true
		}
	}
	return copied, failed, ""
}

// place copies a checkpoint to the session's replicas, in rendezvous
// order, passing over members that do not answer or refuse (a member that
// just died may still be listed). It returns the members that hold it, a
// member that refused it for a newer epoch, and whether it has all the
// copies asked for: fewer members than Replicas to hold them is not
// enough.
func (n *Runtime) place(key string, req copyRequest) (placed []string, staleBy string, full bool) {
	var failed []string
	for round := 0; round < 4 && len(placed) < n.replicas; round++ {
		targets := n.members.Replicas(key, n.replicas-len(placed), append(failed, placed...)...)
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

// copyTo stores a checkpoint on every target at once. It returns how many
// took it and which, and the name of a target that refused it for a newer
// epoch.
func (n *Runtime) copyTo(targets []Member, req copyRequest) (acks int, took []string, staleBy string) {
	ctx, cancel := context.WithTimeout(context.Background(), copyTimeout)
	defer cancel()
	body := msgpack.RawMessage(req.appendMsgpack(make([]byte, 0, req.encodedSize()))) // once for every target
	if len(targets) == 1 {
		// The common case (one replica): no goroutine, no lock.
		t := targets[0]
		switch err := n.call(ctx, t.ControlAddr, KindReplicate, body, nil); {
		case err == nil:
			return 1, []string{t.Name}, ""
		case n.copyRefused(t, err):
			return 0, nil, t.Name
		}
		return 0, nil, ""
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			err := n.call(ctx, t.ControlAddr, KindReplicate, body, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				acks++
				took = append(took, t.Name)
			case n.copyRefused(t, err):
				staleBy = t.Name
			}
		})
	}
	wg.Wait()
	return acks, took, staleBy
}

// copyRefused reports whether a copy to t failed because t knows a newer
// epoch of the session; other failures are logged.
func (n *Runtime) copyRefused(t Member, err error) bool {
	var re *transport.RemoteError
	if errors.As(err, &re) && re.Code == CodeStale {
		return true
	}
	n.log.Debug("mtcp: replicating a checkpoint failed", "to", t.Name, "err", err)
	return false
}
