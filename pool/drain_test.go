package pool

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
)

// fakeHost is a listener whose sessions move when a mover says so.
type fakeHost struct {
	mu       sync.Mutex
	sessions map[sessionID]Session
	draining bool
}

func newFakeHost() *fakeHost { return &fakeHost{sessions: map[sessionID]Session{}} }

func (h *fakeHost) add(s *fakeSession) { h.addAs(s, s) }

// addAs adds s, the fakeSession within as.
func (h *fakeHost) addAs(s *fakeSession, as Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.host = h
	h.sessions[s.id] = as
}

func (h *fakeHost) remove(id sessionID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sessions, id)
}

func (h *fakeHost) Session(id sessionID) (Session, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.sessions[id]
	return s, ok
}

func (h *fakeHost) Sessions() []Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Collect(maps.Values(h.sessions))
}

func (h *fakeHost) SessionCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

func (h *fakeHost) Draining() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.draining
}

// fakeSession is a session whose AskMove tells asked.
type fakeSession struct {
	id    sessionID
	host  *fakeHost
	asked func(s *fakeSession, m wire.Move)
}

func (s *fakeSession) ID() sessionID             { return s.id }
func (s *fakeSession) Secret() auth.Secret       { return auth.Secret{} }
func (s *fakeSession) Epoch() uint64             { return 1 }
func (s *fakeSession) Fence(uint64, string)      {}
func (s *fakeSession) MembersChanged(bool, bool) {}
func (s *fakeSession) Ended() bool               { _, ok := s.host.Session(s.id); return !ok }
func (s *fakeSession) AskMove(m wire.Move) bool  { s.asked(s, m); return true }
func (s *fakeSession) HandOver(context.Context, *HandoverRequest, string, func(*snapshot.Record, uint64)) error {
	return &ControlError{CodeNotMovable, "a fake session"}
}

// startFakeMembers starts a pool of Runtimes called names over fake hosts.
func startFakeMembers(t *testing.T, cfg RuntimeConfig, names ...string) ([]*Runtime, []*fakeHost) {
	t.Helper()
	var members []*Runtime
	var hosts []*fakeHost
	for i, name := range names {
		c := cfg
		c.Name, c.Key, c.Gossip, c.Profile = name, testKey, "127.0.0.1:0", ProfileLocal
		c.ClientAddr = fmt.Sprintf("127.0.0.1:%d", 21000+i)
		if i > 0 {
			c.Join = []string{members[0].Membership().GossipAddr()}
		}
		h := newFakeHost()
		n, err := StartRuntime(c, h)
		require.NoError(t, err)
		t.Cleanup(n.Close)
		members, hosts = append(members, n), append(hosts, h)
	}
	for _, n := range members {
		eventually(t, func() bool { return len(n.Membership().Members()) == len(names) }, "%s sees the pool", n.Name())
	}
	return members, hosts
}

// TestDrainIsPacedAndAsksOnce: a member drains 600 sessions into a pool
// where one member already holds 300 and the other none. At most the
// drain window of moves is under way at any time, every session is asked
// to move exactly once (even those whose move takes longer than a drain
// used to wait before asking again), and the sessions are shared by spare
// capacity: the empty member gets three times as many as the loaded one,
// which the two end up holding alike.
func TestDrainIsPacedAndAsksOnce(t *testing.T) {
	const (
		moving = 600
		loaded = 300
		window = 16
	)
	members, hosts := startFakeMembers(t, RuntimeConfig{HandshakeTimeout: 5 * time.Second, DrainWindow: window}, "a", "b", "c")
	byName := map[string]*fakeHost{"a": hosts[0], "b": hosts[1], "c": hosts[2]}
	for i := range loaded {
		hosts[1].add(&fakeSession{id: sessionID{1, byte(i >> 8), byte(i)}})
	}
	eventually(t, func() bool { m, _ := members[0].Membership().Member("b"); return m.Sessions == loaded },
		"a sees b's %d sessions", loaded)

	var mu sync.Mutex
	asks := map[sessionID]int{}
	to := map[string]int{}
	inFlight, maxInFlight := 0, 0
	var moves sync.WaitGroup
	asked := func(s *fakeSession, m wire.Move) {
		mu.Lock()
		defer mu.Unlock()
		asks[s.id]++
		if asks[s.id] > 1 {
			return // a second ask: the test fails below
		}
		to[m.Name]++
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		// Some moves take longer than a drain used to wait before asking
		// again (2 s).
		took := time.Millisecond
		if s.id[2]%100 == 0 {
			took = 2500 * time.Millisecond
		}
		moves.Add(1)
		time.AfterFunc(took, func() {
			defer moves.Done()
			mu.Lock()
			inFlight--
			mu.Unlock()
			s.host.remove(s.id)
			byName[m.Name].add(&fakeSession{id: s.id})
		})
	}
	for i := range moving {
		hosts[0].add(&fakeSession{id: sessionID{2, byte(i >> 8), byte(i)}, asked: asked})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	left, err := members[0].Drain(ctx)
	require.NoError(t, err)
	require.Zero(t, left)
	moves.Wait()

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, asks, moving)
	for id, k := range asks {
		require.Equal(t, 1, k, "session %x asked to move %d times", id, k)
	}
	require.LessOrEqual(t, maxInFlight, window, "moves under way at once")
	t.Logf("sessions sent: %v; at most %d moves at once", to, maxInFlight)
	require.Zero(t, to["a"])
	// The level is (300 + 600) / 2 = 450 each: b takes about 150, c about
	// 450 (a plan made again when the pool changes during the drain sees
	// loads up to a second old).
	require.Less(t, to["b"], to["c"]/2)
	require.InDelta(t, loaded+to["b"], to["c"], 60, "b and c end up holding alike")
}

// TestDrainAsksAgainAfterAFailedMove: a session whose client does not move
// (its move failed, and it stayed) is asked again once its move's time ran
// out, and the drain ends when it moves.
func TestDrainAsksAgainAfterAFailedMove(t *testing.T) {
	members, hosts := startFakeMembers(t, RuntimeConfig{HandshakeTimeout: 200 * time.Millisecond}, "a", "b")
	var mu sync.Mutex
	asks := 0
	var moves sync.WaitGroup
	moves.Add(1)
	hosts[0].add(&fakeSession{id: sessionID{3}, asked: func(s *fakeSession, m wire.Move) {
		mu.Lock()
		defer mu.Unlock()
		asks++
		if asks == 2 { // the first move failed
			go func() {
				defer moves.Done()
				s.host.remove(s.id)
				hosts[1].add(&fakeSession{id: s.id})
			}()
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := members[0].Drain(ctx)
	require.NoError(t, err)
	moves.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 2, asks)
	require.Equal(t, 1, hosts[1].SessionCount())
}

// TestDrainWindowAdapts: a drain's window grows by one per move done
// within the target, up to DrainWindow; a move that took longer cuts it by
// a quarter, at most once per target; it never falls below
// leastDrainWindow.
func TestDrainWindowAdapts(t *testing.T) {
	d := &drain{window: firstDrainWindow, most: 100, target: time.Second}
	now := time.Now()
	for range 100 {
		d.done(now, inFlight{at: now.Add(-time.Hour), sent: now.Add(-100 * time.Millisecond)})
	}
	require.Equal(t, 100, d.window, "fast moves grow it up to DrainWindow")
	slow := inFlight{at: now.Add(-3 * time.Second)} // never seen sent: timed from when asked
	d.done(now, slow)
	require.Equal(t, 75, d.window)
	d.done(now.Add(500*time.Millisecond), slow)
	require.Equal(t, 75, d.window, "cut at most once per target")
	for i := range 40 {
		d.done(now.Add(time.Duration(i+2)*2*time.Second), slow)
	}
	require.Equal(t, leastDrainWindow, d.window)

	// Moves that failed together halve it once.
	d = &drain{window: 200, most: 256, target: time.Second}
	for range 50 {
		d.failed(now)
	}
	require.Equal(t, 100, d.window, "50 moves failed at once halve it once")
	d.failed(now.Add(2 * time.Second))
	require.Equal(t, 50, d.window)
}

// pendingSession is a fakeSession whose MOVE goes out when told.
type pendingSession struct {
	*fakeSession
	pending bool
}

func (s *pendingSession) MovePending() bool { return s.pending }

// TestDrainGlanceKeepsCount: between its walks over every move under way, a
// drain looks only at the sessions gone since (as the runtime collects
// them) and at those whose MOVE had not gone out; its count of moves under
// way stays what a walk finds.
func TestDrainGlanceKeepsCount(t *testing.T) {
	h := newFakeHost()
	n := &Runtime{host: h, cfg: RuntimeConfig{HandshakeTimeout: time.Hour}}
	n.gone.watch(true)
	d := newDrain(n)
	now := time.Now()
	var ss []*pendingSession
	for i := range 10 {
		s := &pendingSession{fakeSession: &fakeSession{id: sessionID{4, byte(i)}}, pending: true}
		h.addAs(s.fakeSession, s)
		ss = append(ss, s)
		// As step asks it.
		d.flight[s.id] = inFlight{at: now}
		d.unsent[s.id] = true
		d.moving++
	}
	check := func(moving, flight int, what string) {
		t.Helper()
		require.Equal(t, moving, d.moving, "moves under way: %s", what)
		require.Len(t, d.flight, flight, "moves asked: %s", what)
	}
	for _, s := range ss[:5] {
		s.pending = false
	}
	d.glance(now)
	check(10, 10, "asked since the last walk, all count")
	d.walk(now)
	check(5, 10, "a walk counts those whose MOVE went out")
	require.Len(t, d.unsent, 5)

	for _, s := range ss[:2] { // two whose MOVE went out leave
		h.remove(s.id)
		n.gone.add(s.id)
	}
	h.remove(ss[5].id) // one whose MOVE waited leaves too
	n.gone.add(ss[5].id)
	n.gone.add(sessionID{9}) // a session the drain did not ask
	d.glance(now)
	check(3, 7, "after three left")
	ss[6].pending, ss[7].pending = false, false
	d.glance(now)
	check(5, 7, "two more MOVEs went out")
	require.False(t, d.flight[ss[6].id].sent.IsZero())
	d.walk(now)
	check(5, 7, "a walk finds the same")

	n.gone.watch(false)
	n.gone.add(ss[8].id)
	require.Empty(t, n.gone.take(nil), "nothing is collected while no drain watches")
}
