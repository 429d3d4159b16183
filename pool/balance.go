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
	// Slack is how far above the pool's average load the member may be
	// before it sheds sessions (default 0.25: 25% above). Load is sessions
	// weighed by how the member serves them (see Loads).
	Slack float64
	// MaxMoves bounds the sessions asked to move per interval (default 16).
	MaxMoves int
}

func (b Balance) withDefaults() Balance {
	if b.Interval <= 0 {
		b.Interval = 5 * time.Second
	}
	if b.MaxMoves <= 0 {
		b.MaxMoves = 16
	}
	if b.Slack <= 0 {
		b.Slack = 0.25
	}
	return b
}

// balance runs the member's load balancing until the node stops.
func (n *Runtime) balance(b Balance) {
	defer n.wg.Done()
	t := time.NewTicker(b.Interval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.balanceOnce(b)
		}
	}
}

// fledHold is how long a member sends no session back to a member its
// sessions came from (at least; four balance intervals if longer).
const fledHold = 30 * time.Second

// balanceOnce asks some movable sessions to move when this member holds
// more than its share. Members are judged by how they serve, not only by
// how many sessions they hold (Loads): a member whose sessions get a tenth
// of the pool's pace counts ten times its sessions. Above its share by
// more than Slack, the member sheds the sessions that bring it back to
// the pool's average (not lower: hysteresis), at most MaxMoves, to the
// members below the average in proportion to what each lacks of it
// (Spare), never to a member whose sessions just came here.
func (n *Runtime) balanceOnce(b Balance) {
	if n.host.Draining() {
		return
	}
	local := n.host.SessionCount()
	var members []Member
	for _, m := range n.members.Members() {
		if m.Name == n.name {
			m.Sessions = local
		}
		if !m.Draining {
			members = append(members, m)
		}
	}
	if len(members) < 2 || local == 0 {
		return
	}
	loads := Loads(members)
	paces := Paces(members)
	total, self := 0.0, -1
	for i, m := range members {
		total += loads[i]
		if m.Name == n.name {
			self = i
		}
	}
	if self < 0 {
		return
	}
	avg := total / float64(len(members))
	if loads[self] <= avg*(1+b.Slack) || loads[self]-avg < 1 {
		return
	}
	// Each session here weighs 1/pace: shed the sessions whose weight is the
	// excess.
	excess := min(b.MaxMoves, local, int(math.Ceil((loads[self]-avg)*paces[self])))
	fled := n.fledFrom(max(fledHold, 4*b.Interval))
	var targets []Member
	var deficit []float64
	for i, m := range members {
		if i != self && loads[i] < avg && !fled[m.Name] {
			targets = append(targets, m)
			deficit = append(deficit, avg-loads[i])
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
	for _, c := range n.host.Sessions() {
		if asked >= excess {
			break
		}
		to, _ := plan.next()
		if c.AskMove(wire.Move{Reason: wire.MoveBalance, Name: to.Name, Addr: to.ClientAddr}) {
			moved[to.Name]++
			asked++
		}
	}
	if asked > 0 {
		n.log.Info("mtcp: balancing load", "asked", asked, "to", moved, "sessions", local,
			"load", loads[self], "pool average", avg)
	}
}
