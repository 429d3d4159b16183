package pool

import (
	"math"
	"time"

	"github.com/migratory/mtcp/internal/wire"
)

// Balance configures a member that asks clients to move when the pool is
// unevenly loaded (mtcp.Config.Balance). Zero fields take defaults.
type Balance struct {
	// Interval is how often the member compares its load with the pool's
	// (default 5 s; shorter than about 2 s acts on stale load figures).
	Interval time.Duration
	// Slack is how far above its share the member may hold sessions
	// before it sheds them (default 0.2: 20% above). Its share is the
	// pool's sessions in proportion to how fast each member serves them
	// (see Loads and Fair): a member whose sessions get a tenth of the
	// pool's pace has a tenth of the share of one at full pace.
	Slack float64
	// MaxMoves, if positive, bounds the sessions asked to move per
	// interval; by default the member asks as many as its excess.
	MaxMoves int
}

func (b Balance) withDefaults() Balance {
	if b.Interval <= 0 {
		b.Interval = 5 * time.Second
	}
	if b.MaxMoves <= 0 {
		b.MaxMoves = math.MaxInt
	}
	if b.Slack <= 0 {
		b.Slack = 0.2
	}
	return b
}

// balance runs the member's load balancing until the member stops.
func (n *Runtime) balance(b Balance) {
	bl := &balancer{n: n, cfg: b}
	every(&n.wg, n.stop, b.Interval, bl.once)
}

// fledHold is how long a member sends no session back to a member its
// sessions came from (at least; four balance intervals if longer).
const fledHold = 30 * time.Second

// balancer is a member's load balancing between rounds.
type balancer struct {
	n   *Runtime
	cfg Balance
	// asked holds the sessions asked to move in the last rounds that were
	// still here at the last, and how many rounds ago they were asked.
	asked map[sessionID]int
	// The member's traffic and session-milliseconds at the last round:
	// its own pace is judged over the whole interval since.
	traffic, held uint64
	at            time.Time
}

// ownRate returns the bytes per second per session of the member's own
// sessions since the last round (false if none was held, if this is the
// first round, or if the last was less than a second ago: the sessions are
// counted every loadSample). One second's rate, as published, can be far
// off: right after a member slows, a second can carry nothing at all.
func (bl *balancer) ownRate() (float64, bool) {
	if !bl.at.IsZero() && time.Since(bl.at) < time.Second {
		return 0, false
	}
	traffic, held := bl.n.traffic.Load(), bl.n.held.Load()
	dt, dh := traffic-bl.traffic, held-bl.held
	first := bl.at.IsZero()
	bl.traffic, bl.held, bl.at = traffic, held, time.Now()
	if first || dh == 0 {
		return 0, false
	}
	return float64(dt) / (float64(dh) / 1000), true
}

// movingRounds is how many rounds a session asked to move counts as gone:
// a session still here after that did not move.
const movingRounds = 2

// once asks sessions to move when this member holds more than its share.
// Members are judged by how they serve, not only by how many sessions
// they hold (Loads, Fair): a member whose sessions get a tenth of the
// pool's pace has a tenth of the share of one at full pace. The others'
// rates are those they publish; this member's own is its rate per session
// over the interval since the last round (ownRate). Above its
// share by more than Slack, the member sheds its excess, all of it (but at
// most MaxMoves), down to its share, not lower (hysteresis: it sheds again
// only once above the slack again), to the members below their shares in
// proportion to what each lacks, never to a member whose sessions just
// came here. Sessions asked in the last round that are still here count as
// gone (their moves are under way) and are not asked again.
func (bl *balancer) once() {
	n := bl.n
	if n.host.Draining() {
		return
	}
	sessions := n.host.Sessions()
	moving := make(map[sessionID]int)
	for _, s := range sessions {
		if age, ok := bl.asked[s.ID()]; ok && age < movingRounds && !s.Ended() {
			moving[s.ID()] = age + 1
		}
	}
	bl.asked = moving
	pending := len(moving)
	local := len(sessions) - pending
	rate, measured := bl.ownRate()
	var members []Member
	for _, m := range n.members.Members() {
		if m.Name == n.name {
			m.Sessions = local
			if measured {
				m.BytesPerSec = uint64(rate * float64(local))
			}
		}
		if !m.Draining {
			members = append(members, m)
		}
	}
	if len(members) < 2 || local <= 0 {
		return
	}
	paces := Paces(members)
	level := Fair(members, paces)
	self := -1
	for i, m := range members {
		if m.Name == n.name {
			self = i
		}
	}
	if self < 0 {
		return
	}
	share := level * paces[self]
	if float64(local) <= share*(1+bl.cfg.Slack) || float64(local)-share < 1 {
		return
	}
	excess := min(bl.cfg.MaxMoves, local, int(math.Ceil(float64(local)-share)))
	fled := n.fledFrom(max(fledHold, 4*bl.cfg.Interval))
	var targets []Member
	var deficit []float64
	for i, m := range members {
		if d := level*paces[i] - float64(m.Sessions); i != self && d > 0 && !fled[m.Name] {
			targets = append(targets, m)
			deficit = append(deficit, d)
		}
	}
	if len(targets) == 0 || excess <= 0 {
		return
	}
	// Where the sessions go: in proportion to each target's deficit, in
	// turn (as a drain spreads them).
	plan := &drainPlan{targets: targets, weight: deficit, credit: make([]float64, len(targets))}
	for _, w := range deficit {
		plan.total += w
	}
	moved := map[string]int{}
	asked := 0
	for _, s := range sessions {
		if asked >= excess {
			break
		}
		if _, ok := moving[s.ID()]; ok {
			continue
		}
		to, _ := plan.next()
		if s.AskMove(wire.Move{Reason: wire.MoveBalance, Name: to.Name, Addr: to.ClientAddr}) {
			moved[to.Name]++
			moving[s.ID()] = 0
			asked++
		}
	}
	if asked > 0 {
		n.log.Info("mtcp: balancing load", "asked", asked, "to", moved, "sessions", local,
			"share", share, "pace", paces[self], "still moving", pending)
	}
}
