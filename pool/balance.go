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
	// Slack is how far above the pool's average session count the member
	// may be before it sheds sessions (default 0.25: 25% above).
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
func (n *Node) balance(b Balance) {
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

// balanceOnce asks some movable sessions to move to the least loaded
// members when this member holds more than its share.
func (n *Node) balanceOnce(b Balance) {
	if n.host.Draining() {
		return
	}
	members := n.members.Members()
	local := n.host.SessionCount()
	total, count := 0, 0
	for _, m := range members {
		if m.Draining {
			continue
		}
		count++
		if m.Name == n.name {
			total += local
		} else {
			total += m.Sessions
		}
	}
	if count < 2 {
		return
	}
	avg := float64(total) / float64(count)
	if float64(local) <= avg*(1+b.Slack) {
		return
	}
	excess := min(b.MaxMoves, local-int(math.Ceil(avg)))
	// Hand the excess to the members below average, least loaded first.
	load := map[string]int{}
	for _, m := range members {
		if !m.Draining && m.Name != n.name {
			load[m.Name] = m.Sessions
		}
	}
	moved := 0
	for _, c := range n.host.Sessions() {
		if moved >= excess {
			break
		}
		name, best := "", math.MaxInt
		for m, l := range load {
			if l < best || (l == best && m < name) {
				name, best = m, l
			}
		}
		if name == "" || float64(best) >= avg {
			break
		}
		target, ok := n.members.Member(name)
		if !ok {
			delete(load, name)
			continue
		}
		if c.AskMove(wire.Move{Reason: wire.MoveBalance, Name: target.Name, Addr: target.ClientAddr}) {
			load[name]++
			moved++
		}
	}
	if moved > 0 {
		n.log.Info("mtcp: balancing load", "asked", moved, "sessions", local, "pool average", avg)
	}
}
