package pool

import (
	"context"
	"time"

	"github.com/migratory/mtcp/internal/wire"
)

// DefaultDrainWindow is how many of a draining member's moves may be under
// way at once, at most, by default (RuntimeConfig.DrainWindow).
const DefaultDrainWindow = 256

// A drain's window adapts to how long its moves take: it starts at
// firstDrainWindow (or DrainWindow, if smaller), grows by one for each move
// done within the target (a quarter of the handshake timeout, which bounds
// a move: the client's handshake with the member it moves to), and shrinks
// by a quarter when a move took longer and by half when one failed, at
// most once per target; never below leastDrainWindow.
const (
	firstDrainWindow = 64
	leastDrainWindow = 8
)

const (
	// drainPoll is how often a drain looks at the moves under way when no
	// handover tells it first.
	drainPoll = 20 * time.Millisecond
	// drainRescan is how often a drain looks for sessions it does not
	// track: sessions that could not move yet (their application has not
	// checkpointed), and sessions that came back.
	drainRescan = 250 * time.Millisecond
	// drainStepGap is the least time between two looks at the moves
	// under way: handovers that come faster (a thousand a second) are
	// looked at together, not each with a walk over every move.
	drainStepGap = 2 * time.Millisecond
	// drainPendingWindows bounds the sessions asked and not gone yet, in
	// windows: those whose MOVE waits (for a checkpoint boundary, or for
	// their client to come back) do not count towards the window, but once
	// their MOVEs go they are moves under way all at once.
	drainPendingWindows = 4
)

// Drain moves the member's sessions away, as a planned, paced operation.
// It announces that the member drains (it gets no new sessions), spreads
// the sessions over the members that take them by their spare capacity
// (drainPlan), and asks them to move a window at a time, the window
// adapting to how long the moves take: at most DrainWindow moves are
// under way at once (a session whose client has not
// been sent its MOVE yet, being away, does not count: see MovePending, but
// at most four windows of sessions are asked and not gone at once),
// and the next session is asked when one of them is done. A session is asked once; only one still here
// after its move's time ran out (its move failed: the session stayed) is
// asked again. Drain returns once no session is left and every handover
// was confirmed by its successor (until then a lost answer can be asked
// for again, so the member stays; a successor that never confirms is
// waited for at most twice the handshake timeout). Sessions that cannot
// move (their application never checkpointed) are waited for until they
// end. If ctx ends first, it returns ctx's error with the sessions that
// remain.
func (n *Runtime) Drain(ctx context.Context) (remaining int, err error) {
	if err := n.members.SetDraining(true); err != nil {
		n.log.Warn("mtcp: announcing drain", "err", err)
	}
	d := newDrain(n)
	n.gone.watch(true)
	defer n.gone.watch(false)
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	gap := time.NewTimer(0)
	defer gap.Stop()
	full := true
	for {
		last := time.Now()
		d.step(last, full)
		if len(d.flight) == 0 && n.host.SessionCount() == 0 && n.Unsettled() == 0 {
			n.log.Info("mtcp: drain done", "asked", d.asked, "asked again", d.again, "window", d.window, "took", time.Since(d.start))
			return 0, nil
		}
		select {
		case <-tick.C:
			full = true
		case <-n.moved:
			full = false
			gap.Reset(drainStepGap - time.Since(last))
			select {
			case <-gap.C:
			case <-ctx.Done():
				return n.host.SessionCount(), ctx.Err()
			}
		case <-ctx.Done():
			return n.host.SessionCount(), ctx.Err()
		}
	}
}

type sessionID = [wire.SessionIDLen]byte

// MovePending is what a Session may also implement: it reports whether a
// MOVE asked of its client has not gone out yet (the client is away, or
// the session waits to ask it). A drain's window counts only the moves
// under way: a session whose client is away does not hold back the rest.
type MovePending interface {
	MovePending() bool
}

func movePending(s Session) bool {
	p, ok := s.(MovePending)
	return ok && p.MovePending()
}

// drain is a drain in progress.
type drain struct {
	n      *Runtime
	start  time.Time
	window int           // moves under way at once, now
	most   int           // DrainWindow: the window at its largest
	target time.Duration // how long a move should take, at most
	cut    time.Time     // when the window last shrank
	retry  time.Duration // how long a move may take before it counts as failed

	plan    *drainPlan
	topo    uint64                 // the pool's Topology the plan was made at
	queue   []sessionID            // sessions to ask, in order
	queued  map[sessionID]bool     // in queue
	flight  map[sessionID]inFlight // asked, not gone yet
	unsent  map[sessionID]bool     // of those, the ones whose MOVE was not seen gone out; true: counted in moving
	moving  int                    // moves under way: asked, MOVE out (or asked since the last walk)
	gone    []sessionID            // sessions gone, as the runtime collected them
	scanned time.Time              // when the sessions were last listed

	asked, again int // sessions asked, and asked again after a failed move
}

// inFlight is a session asked to move.
type inFlight struct {
	to   Member
	at   time.Time // asked
	sent time.Time // first seen with its MOVE gone out (zero: not yet)
}

func newDrain(n *Runtime) *drain {
	d := &drain{
		n: n, start: time.Now(), most: n.cfg.DrainWindow,
		target: max(n.cfg.HandshakeTimeout/4, 100*time.Millisecond),
		retry:  max(2*n.cfg.HandshakeTimeout, time.Second),
		queued: make(map[sessionID]bool), flight: make(map[sessionID]inFlight),
		unsent: make(map[sessionID]bool),
	}
	if d.most <= 0 {
		d.most = DefaultDrainWindow
	}
	d.window = min(firstDrainWindow, d.most)
	return d
}

// step looks at the moves under way and asks more sessions to move, up to
// the window. A full step (at each poll) walks every move under way; a
// quick one (after a handover) looks only at the sessions gone since and
// at those whose MOVE had not gone out yet.
func (d *drain) step(now time.Time, full bool) {
	n := d.n
	if full {
		d.walk(now)
	} else {
		d.glance(now)
	}
	if len(d.queue) == 0 && now.Sub(d.scanned) > drainRescan || d.scanned.IsZero() {
		d.scanned = now
		for _, s := range n.host.Sessions() {
			if id := s.ID(); !d.queued[id] {
				if _, ok := d.flight[id]; !ok {
					d.enqueue(id)
				}
			}
		}
	}
	if len(d.queue) == 0 || d.moving >= d.window || len(d.flight) >= drainPendingWindows*d.window {
		return
	}
	if d.plan == nil || n.members.Topology() != d.topo {
		// Planned for the sessions left, over the members there are now.
		d.topo = n.members.Topology()
		d.plan = planDrain(n.members.Members(), n.name, len(d.queue)+len(d.flight))
	}
	for d.moving < d.window && len(d.flight) < drainPendingWindows*d.window && len(d.queue) > 0 {
		id := d.queue[0]
		d.queue = d.queue[1:]
		delete(d.queued, id)
		s, ok := n.host.Session(id)
		if !ok || s.Ended() {
			continue
		}
		to, ok := d.plan.next()
		if !ok {
			d.enqueue(id) // no member takes sessions: wait for one
			break
		}
		if !s.AskMove(wire.Move{Reason: wire.MoveDrain, Name: to.Name, Addr: to.ClientAddr}) {
			continue // it cannot move yet: asked again after a later scan
		}
		d.flight[id] = inFlight{to: to, at: now}
		d.unsent[id] = true // counted as under way until a step sees it waits
		d.asked++
		d.moving++
	}
}

// walk looks at every move under way: those done (the session left or
// ended), those whose time ran out (the session stayed: it goes to the end
// of the queue, to be asked again), and how many are under way (their MOVE
// went out).
func (d *drain) walk(now time.Time) {
	n := d.n
	d.gone = n.gone.take(d.gone) // each is looked at below
	d.moving = 0
	for id, f := range d.flight {
		s, ok := n.host.Session(id)
		switch {
		case !ok || s.Ended():
			d.leave(id)
			d.done(now, f)
		case now.Sub(f.at) > d.retry:
			d.leave(id)
			d.enqueue(id)
			d.again++
			d.failed(now)
		case !movePending(s):
			d.sentAt(id, f, now)
			d.moving++
		default:
			d.unsent[id] = false
		}
	}
}

// glance looks at the sessions that left since the last step and at those
// whose MOVE had not gone out.
func (d *drain) glance(now time.Time) {
	n := d.n
	d.gone = n.gone.take(d.gone)
	for _, id := range d.gone {
		f, ok := d.flight[id]
		if !ok {
			continue
		}
		if s, ok := n.host.Session(id); ok && !s.Ended() {
			continue // fenced at an epoch it had passed: it stays
		}
		if counted, waits := d.unsent[id]; !waits || counted {
			d.moving--
		}
		d.leave(id)
		d.done(now, f)
	}
	for id, counted := range d.unsent {
		s, ok := n.host.Session(id)
		if !ok || s.Ended() || movePending(s) {
			continue // the next walk sees it gone
		}
		d.sentAt(id, d.flight[id], now)
		if !counted {
			d.moving++
		}
	}
}

// sentAt notes that the MOVE of id went out, at now if not seen before.
func (d *drain) sentAt(id sessionID, f inFlight, now time.Time) {
	if f.sent.IsZero() {
		f.sent = now
		d.flight[id] = f
	}
	delete(d.unsent, id)
}

// leave forgets a move under way.
func (d *drain) leave(id sessionID) {
	delete(d.flight, id)
	delete(d.unsent, id)
}

// done adapts the window to a move that ended: grown if it took less than
// the target, from when its MOVE went out, else cut (at most once per
// target).
func (d *drain) done(now time.Time, f inFlight) {
	since := f.sent
	if since.IsZero() {
		since = f.at
	}
	switch {
	case now.Sub(since) <= d.target:
		d.window = min(d.most, d.window+1)
	case now.Sub(d.cut) > d.target:
		d.window = max(min(leastDrainWindow, d.most), d.window*3/4)
		d.cut = now
	}
}

// failed halves the window for a move whose time ran out, at most once per
// target: moves asked together fail together.
func (d *drain) failed(now time.Time) {
	if now.Sub(d.cut) > d.target {
		d.window = max(min(leastDrainWindow, d.most), d.window/2)
		d.cut = now
	}
}

func (d *drain) enqueue(id sessionID) {
	if d.queued[id] {
		return
	}
	d.queued[id] = true
	d.queue = append(d.queue, id)
}
