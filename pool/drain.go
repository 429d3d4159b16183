package pool

import (
	"context"
	"time"

	"github.com/migratory/mtcp/internal/wire"
)

// drainRetry is how long a session asked to move may take before it is
// asked again (to another member).
const drainRetry = 2 * time.Second

// Drain moves the member's sessions away: it announces that the member
// drains (it gets no new sessions), asks every session to move to the
// members that take sessions, in turn, and asks again a session that has
// not moved after drainRetry, until no session is left and every handover
// was confirmed by its successor (until then a lost answer can be asked
// for again, so the member stays). Sessions that cannot move (their
// application never checkpointed) are waited for until they end. If ctx
// ends first, it returns ctx's error with the sessions that remain.
func (n *Node) Drain(ctx context.Context) (remaining int, err error) {
	if err := n.members.SetDraining(true); err != nil {
		n.log.Warn("mtcp: announcing drain", "err", err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	asked := make(map[[wire.SessionIDLen]byte]time.Time)
	next := 0
	for {
		sessions := n.host.Sessions()
		if len(sessions) == 0 && n.Unsettled() == 0 {
			return 0, nil
		}
		targets := n.members.Eligible(n.name)
		live := make(map[[wire.SessionIDLen]byte]bool, len(sessions))
		for _, s := range sessions {
			id := s.ID()
			live[id] = true
			if at, ok := asked[id]; (ok && time.Since(at) < drainRetry) || len(targets) == 0 {
				continue
			}
			t := targets[next%len(targets)]
			if s.AskMove(wire.Move{Reason: wire.MoveDrain, Name: t.Name, Addr: t.ClientAddr}) {
				asked[id] = time.Now()
				next++
			}
		}
		for id := range asked {
			if !live[id] {
				delete(asked, id)
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return n.host.SessionCount(), ctx.Err()
		}
	}
}
