package pool

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

// TestBalanceLeavesASlowMember: three members hold 100 sessions each, but
// one serves its sessions at a twentieth of the others' pace. Judged by
// session counts the pool is even; judged by how it serves, the slow
// member is far above its share: it sheds all its excess at once (no fixed
// bound), spread over the others, does not shed again while those moves
// are under way, sends none to a member whose sessions just came to it,
// and the members that serve well shed none.
func TestBalanceLeavesASlowMember(t *testing.T) {
	members, hosts := startFakeMembers(t, RuntimeConfig{HandshakeTimeout: 5 * time.Second}, "a", "b", "c")
	var mu sync.Mutex
	to := map[string]int{}
	for h, host := range hosts {
		for i := range 100 {
			host.add(&fakeSession{id: sessionID{byte(h), byte(i)}, asked: func(_ *fakeSession, m wire.Move) {
				mu.Lock()
				defer mu.Unlock()
				to[m.Name]++
			}})
		}
	}
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	traffic.Add(1)
	go func() { // b and c serve 1,000 B/s per session, a 50
		defer traffic.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				members[0].AddTraffic(100 * 50 / 20)
				members[1].AddTraffic(100 * 1000 / 20)
				members[2].AddTraffic(100 * 1000 / 20)
			}
		}
	}()
	defer func() { close(stop); traffic.Wait() }()
	eventually(t, func() bool {
		ms := members[0].Membership().Members()
		if len(ms) != 3 {
			return false
		}
		for _, m := range ms {
			if m.Sessions != 100 || m.BytesPerSec == 0 {
				return false
			}
		}
		return Loads(ms)[0] > 1000
	}, "a sees the pool's load: %v", func() any { return members[0].Membership().Members() })

	b := Balance{}.withDefaults() // no bound on the moves but the excess
	(&balancer{n: members[1], cfg: b}).once()
	(&balancer{n: members[2], cfg: b}).once()
	mu.Lock()
	require.Empty(t, to, "members that serve well and hold their share shed nothing")
	mu.Unlock()

	bl := &balancer{n: members[0], cfg: b}
	bl.once()
	mu.Lock()
	// a serves at 50/683 ≈ 0.073 of the pool's pace: its share of the 300
	// sessions is 300 × 0.073/2.073 ≈ 11; it sheds the other 89 or 90, as
	// many to b as to c (each lacks ≈ 45 of its share).
	t.Logf("a asked sessions to move: %v", to)
	require.InDelta(t, 89, to["b"]+to["c"], 3)
	require.InDelta(t, to["b"], to["c"], 2)
	clear(to)
	mu.Unlock()

	// The sessions asked are still here (their moves take a while): they
	// count as gone, and none is asked again nor others in their place.
	bl.once()
	mu.Lock()
	require.Empty(t, to, "a round later, with the moves under way")
	mu.Unlock()

	// Sessions of b just came to a: none goes back to b.
	members[0].noteFled("b")
	(&balancer{n: members[0], cfg: b}).once()
	mu.Lock()
	defer mu.Unlock()
	require.Zero(t, to["b"])
	require.NotZero(t, to["c"])
}
