package mtcp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// always draws 0: every random draw that may move does.
func always() float64 { return 0 }

// TestDefaultPolicyJudgesEachSessionAlone: sessions that share a policy
// are judged on their own histories, however their checks interleave.
func TestDefaultPolicyJudgesEachSessionAlone(t *testing.T) {
	p := &DefaultPolicy{Settle: time.Millisecond, random: always}
	members := []Member{{Name: "m0", Addr: "a0", Sessions: 10}, {Name: "m1", Addr: "a1", Sessions: 1}}
	slow := PolicyStats{Current: members[0], Members: members, Attached: time.Minute,
		Baseline: 1000, Rate: 100, Recent: []float64{1000, 100, 100, 100}, Checks: 4}
	busy := PolicyStats{Current: members[0], Members: members, Attached: time.Minute,
		Baseline: 1000, Rate: 1000, Recent: []float64{100, 100, 1000}, Checks: 3}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if got := p.Check(slow); got != "a1" {
				t.Errorf("slow session: Check = %q, want a1", got)
			}
		}()
		go func() {
			defer wg.Done()
			if got := p.Check(busy); got != "" {
				t.Errorf("busy session: Check = %q, want to stay", got)
			}
		}()
	}
	wg.Wait()
}

func TestDefaultPolicyRules(t *testing.T) {
	members := []Member{{Name: "m0", Addr: "a0", Sessions: 10}, {Name: "m1", Addr: "a1", Sessions: 1}}
	base := PolicyStats{Current: members[0], Members: members, Attached: time.Minute, Baseline: 1000}
	with := func(f func(*PolicyStats)) PolicyStats {
		s := base
		f(&s)
		if s.Checks == 0 {
			s.Checks = len(s.Recent)
		}
		return s
	}
	low := func(n int) []float64 {
		r := make([]float64, n)
		for i := range r {
			r[i] = 100
		}
		return r
	}
	for _, tc := range []struct {
		name string
		s    PolicyStats
		want string
	}{
		{"settling", with(func(s *PolicyStats) { s.Attached = time.Second; s.Stalled = time.Minute }), ""},
		{"stalled", with(func(s *PolicyStats) { s.Stalled = 5 * time.Second }), "a1"},
		{"low twice", with(func(s *PolicyStats) { s.Recent = low(2) }), ""},
		{"low three times", with(func(s *PolicyStats) { s.Recent = low(3) }), "a1"},
		{"low four times: judged at three", with(func(s *PolicyStats) { s.Recent = low(4) }), ""},
		{"low six times: not judged", with(func(s *PolicyStats) { s.Recent = low(6) }), ""},
		{"low nine times: judged again", with(func(s *PolicyStats) { s.Recent = low(9) }), "a1"},
		{"low longer than Recent holds, judged", with(func(s *PolicyStats) { s.Recent = low(RecentChecks); s.Checks = 21 }), "a1"},
		{"low longer than Recent holds, not judged", with(func(s *PolicyStats) { s.Recent = low(RecentChecks); s.Checks = 18 }), ""},
		{"low, then busy", with(func(s *PolicyStats) { s.Recent = []float64{100, 100, 100, 900} }), ""},
		{"a slow pace: a chunk now and then", with(func(s *PolicyStats) { s.Recent = []float64{0, 100, 0} }), "a1"},
		{"a slow pace, no chunk lately", with(func(s *PolicyStats) { s.Recent = []float64{900, 0, 100, 0} }), "a1"},
		{"slow, then quiet", with(func(s *PolicyStats) { s.Recent = []float64{100, 100, 100, 0, 0, 0, 0, 0, 0} }), ""},
		{"a write a check at half the pace", with(func(s *PolicyStats) { s.Recent = []float64{500, 500, 500} }), ""},
		{"no write yet", with(func(s *PolicyStats) { s.Recent = []float64{1000, 0, 0, 0} }), ""},
		{"a write every five checks at half the pace: judged at the first", with(func(s *PolicyStats) { s.Recent = []float64{1000, 0, 0, 0, 0, 500} }), "a1"},
		{"a write every five checks, judged again", with(func(s *PolicyStats) { s.Recent = []float64{1000, 0, 0, 0, 0, 500, 0, 0, 0, 0, 500, 0} }), "a1"},
		{"a write every five checks, not judged", with(func(s *PolicyStats) { s.Recent = []float64{1000, 0, 0, 0, 0, 500, 0, 0, 0, 0} }), ""},
		{"low, then a busy check among quiet ones", with(func(s *PolicyStats) { s.Recent = []float64{100, 100, 100, 0, 700, 0} }), ""},
		{"no baseline yet", with(func(s *PolicyStats) { s.Baseline = 0; s.Recent = []float64{0, 0, 0} }), ""},
		{"quiet, not slow", with(func(s *PolicyStats) { s.Recent = []float64{0, 0, 0, 0} }), ""},
		{"low but within its share by pace", with(func(s *PolicyStats) {
			s.Recent = low(3) // a tenth of the pace: a tenth of the sessions of m1
			s.Members = []Member{{Name: "m0", Addr: "a0", Sessions: 11}, {Name: "m1", Addr: "a1", Sessions: 100}}
			s.Current = s.Members[0]
		}), ""},
		{"low but no lighter member", with(func(s *PolicyStats) {
			s.Recent = low(3)
			s.Members = []Member{{Name: "m0", Addr: "a0", Sessions: 1}, {Name: "m1", Addr: "a1", Sessions: 1}}
			s.Current = s.Members[0]
		}), ""},
		{"low, above its share by pace, but the others hold more sessions", with(func(s *PolicyStats) {
			s.Recent = low(3) // a pace that drops for all must not send sessions back and forth
			s.Members = []Member{{Name: "m0", Addr: "a0", Sessions: 400}, {Name: "m1", Addr: "a1", Sessions: 420}}
			s.Current = s.Members[0]
		}), ""},
		{"low, the others' rates as low: a pace that drops for all", with(func(s *PolicyStats) {
			s.Recent = low(3)
			s.Members = []Member{{Name: "m0", Addr: "a0", Sessions: 400, BytesPerSec: 400 * 100}, {Name: "m1", Addr: "a1", Sessions: 420, BytesPerSec: 420 * 100}}
			s.Current = s.Members[0]
		}), ""},
		{"low, fewer sessions than the other, but the rates show this one slow", with(func(s *PolicyStats) {
			s.Recent = low(3) // m0: 40 sessions at 100 B/s each; m1: 100 at 1,000
			s.Members = []Member{{Name: "m0", Addr: "a0", Sessions: 40, BytesPerSec: 40 * 100}, {Name: "m1", Addr: "a1", Sessions: 100, BytesPerSec: 100 * 1000}}
			s.Current = s.Members[0]
		}), "a1"},
		{"low, another member holds a few sessions fewer", with(func(s *PolicyStats) {
			s.Recent = low(3) // as when every session slows with the pool
			s.Members = []Member{{Name: "m0", Addr: "a0", Sessions: 499}, {Name: "m1", Addr: "a1", Sessions: 495},
				{Name: "m2", Addr: "a2", Draining: true}}
			s.Current = s.Members[0]
		}), ""},
		{"low three times on a member that balances", with(func(s *PolicyStats) {
			s.Recent = low(3)
			s.Current.Balancing = true
		}), ""},
		{"stalled on a member that balances", with(func(s *PolicyStats) {
			s.Stalled = 5 * time.Second
			s.Current.Balancing = true
		}), "a1"},
		{"low, the others draining", with(func(s *PolicyStats) {
			s.Recent = low(3)
			s.Members = []Member{{Name: "m0", Addr: "a0", Sessions: 10}, {Name: "m1", Addr: "a1", Sessions: 0, Draining: true}}
			s.Current = s.Members[0]
		}), ""},
	} {
		if got := (&DefaultPolicy{random: always}).Check(tc.s); got != tc.want {
			t.Errorf("%s: Check = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestDefaultPolicyMovesTheExcess: each client of a member that serves at
// a tenth of the pace moves with the probability that leaves the member
// its share by pace (1000 sessions, 4 members: 1000 × 0.1/3.1 ≈ 32).
func TestDefaultPolicyMovesTheExcess(t *testing.T) {
	members := []Member{{Name: "m0", Addr: "a0", Sessions: 1000}, {Name: "m1", Addr: "a1"}, {Name: "m2", Addr: "a2"}, {Name: "m3", Addr: "a3"}}
	s := PolicyStats{Current: members[0], Members: members, Attached: time.Minute, Baseline: 1000,
		Recent: []float64{100, 100, 100}, Checks: 3}
	const excess = 1 - 0.1/3.1 // of the sessions
	for _, tc := range []struct {
		draw float64
		move bool
	}{{0, true}, {excess - 0.001, true}, {excess + 0.001, false}, {0.999, false}} {
		p := &DefaultPolicy{random: func() float64 { return tc.draw }}
		if got := p.Check(s); (got != "") != tc.move {
			t.Errorf("draw %.3f: Check = %q, want a move: %t", tc.draw, got, tc.move)
		}
	}
}

// TestDefaultPolicySpreadsTheSlowMembersSessions: the clients of a slow
// member choose where to go weighted by what each member lacks of the
// level the slow member's sessions bring them to, not of the level of the
// few they hold now: members of 20, 19 and 15 sessions take about as many
// of 1,000.
func TestDefaultPolicySpreadsTheSlowMembersSessions(t *testing.T) {
	members := []Member{{Name: "m0", Addr: "a0", Sessions: 1000}, {Name: "m1", Addr: "a1", Sessions: 20},
		{Name: "m2", Addr: "a2", Sessions: 19}, {Name: "m3", Addr: "a3", Sessions: 15}}
	s := PolicyStats{Current: members[0], Members: members, Attached: time.Minute, Baseline: 1000,
		Recent: []float64{100, 100, 100}, Checks: 3}
	p := &DefaultPolicy{random: rand.New(rand.NewPCG(5, 6)).Float64}
	to := map[string]int{}
	moved := 0
	for range 3000 {
		if a := p.Check(s); a != "" {
			to[a]++
			moved++
		}
	}
	for _, a := range []string{"a1", "a2", "a3"} {
		if got, even := float64(to[a]), float64(moved)/3; got < 0.9*even || got > 1.1*even {
			t.Errorf("%s: %d of %d moves, want about a third", a, to[a], moved)
		}
	}
}

// TestDefaultPolicySpreadsBySharePace plays 1,000 clients of a member that
// slows to a tenth of its pace (a 4 KiB write every 2.5 s after the last
// at full pace, four a second), each checked at a phase of its own,
// through the checks of 10 s, the view (sessions and rates, as members
// publish them) showing the moves two checks later, over 100 draws of the
// phases and of the clients' choices: every member holds its share by
// pace within 20% (the slow member in at least 85 of the 100, on average
// within 5%), and no session moves twice. The slow member's clients judge
// their pace from a write or two when they first find it slow; that they
// judge when a write comes makes the estimate high, and a check of the
// run with no write makes it low: the slow member keeps its share give or
// take what independent choices scatter (its clients move or stay each on
// its own draw). Code that judged the pace against a baseline that took in
// the check straddling the slowdown kept about 35 (81 of the 100 draws
// within 20%).
func TestDefaultPolicySpreadsBySharePace(t *testing.T) {
	const n, k, draws = 1000, 4, 100
	shareSlow, shareFull := n*0.1/(0.1+k-1), n/(0.1+k-1)
	in, sum := 0, 0.0
	var slow []int
	for seed := uint64(1); seed <= draws; seed++ {
		final, moves := playSlowMember(seed, n, k, 10)
		for i, m := range final[1:] {
			if got := float64(m); got < 0.8*shareFull || got > 1.2*shareFull {
				t.Errorf("draw %d: m%d holds %d sessions, its share by pace is %.0f", seed, i+1, m, shareFull)
			}
		}
		if got := float64(final[0]); got >= 0.8*shareSlow && got <= 1.2*shareSlow {
			in++
		}
		sum += float64(final[0])
		slow = append(slow, final[0])
		if moves > 1 {
			t.Errorf("draw %d: a session moved %d times", seed, moves)
		}
	}
	t.Logf("the slow member's sessions after 10 s, by draw: %v", slow)
	if in < 85 {
		t.Errorf("the slow member holds its share by pace (%.0f) within 20%% in %d draws of %d", shareSlow, in, draws)
	}
	if mean := sum / draws; mean < 0.95*shareSlow || mean > 1.05*shareSlow {
		t.Errorf("the slow member holds %.1f sessions on average, its share by pace is %.0f", mean, shareSlow)
	}
}

// playSlowMember plays TestDefaultPolicySpreadsBySharePace's pool once; it
// returns the sessions of each member secs after the slowdown and the
// most moves of a session. Each session streams for about 11 s before the slowdown (its
// first check partly before it opened), and its client keeps its figures
// as a client does (policyState).
func playSlowMember(seed uint64, n, k, secs int) ([]int, int) {
	const chunk, perSec = 4096, 4
	const every = 10.0 / perSec // seconds between writes when slow
	r := rand.New(rand.NewPCG(seed, 2))
	p := &DefaultPolicy{Settle: time.Second, random: rand.New(rand.NewPCG(seed, 4)).Float64}
	where := make([]int, n)     // member index
	moves := make([]int, n)     // moves per session
	last := make([]float64, n)  // the last write at full pace, due before the slowdown at 0 but made just after it
	start := make([]float64, n) // the first write
	check := make([]float64, n) // checks come at c - check[i] for whole c
	ps := make([]*policyState, n)
	for i := range last {
		last[i], check[i] = r.Float64()/perSec, r.Float64()
		start[i] = last[i] - 11 + r.Float64()/2
		ps[i] = &policyState{}
	}
	view := func() []Member {
		m := make([]Member, k)
		for i := range m {
			m[i] = Member{Name: fmt.Sprintf("m%d", i), Addr: fmt.Sprintf("a%d", i)}
		}
		for _, w := range where {
			m[w].Sessions++
			if w == 0 {
				m[w].BytesPerSec += chunk * perSec / 10 // 1,638 B/s
			} else {
				m[w].BytesPerSec += chunk * perSec
			}
		}
		return m
	}
	// rate is what session i received on the slow member in the check
	// ending at c - check[i].
	rate := func(i, c int) float64 {
		to := float64(c) - check[i]
		from := to - 1
		writes := 0.0
		for x := last[i]; x >= max(from, start[i]); x -= 1.0 / perSec {
			if x < to {
				writes++
			}
		}
		for x := last[i] + every; x < to; x += every {
			if x >= from {
				writes++
			}
		}
		return writes * chunk
	}
	views := [][]Member{view(), view()}
	for c := -11; c <= secs; c++ {
		members := views[len(views)-2] // as last published: moves show two checks later
		for i := range where {
			if where[i] != 0 || float64(c)-check[i] <= start[i] {
				continue // moved, or not yet opened
			}
			ps[i].observe(rate(i, c))
			s := PolicyStats{Current: members[0], Members: members, Attached: time.Minute, Baseline: ps[i].baseline,
				Recent: slices.Clone(ps[i].recent), Checks: ps[i].checks}
			if to := p.Check(s); to != "" {
				var j int
				fmt.Sscanf(to, "a%d", &j)
				where[i] = j
				moves[i]++
			}
		}
		views = append(views, view())
	}
	final := make([]int, k)
	for _, w := range where {
		final[w]++
	}
	return final, slices.Max(moves)
}

// TestSlowRunJudgesThePace: the pace of a slow run is its mean against the
// busy checks before it. The run's oldest check counts only when it was
// slow throughout (no more than the others' mean), not when it straddles
// the change; and the busy checks before the run stand for the baseline,
// which may have taken in the straddling check.
func TestSlowRunJudgesThePace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		recent []float64
		run    int
		mean   float64
	}{
		{"the oldest straddles the change", []float64{1000, 500, 0, 100}, 3, 50},
		{"the oldest was slow throughout", []float64{1000, 0, 0, 100}, 3, 100.0 / 3},
		{"the oldest as slow as the others", []float64{1000, 50, 50, 50}, 3, 50},
	} {
		run, mean := slowRun(tc.recent, 1000, 0.3, 3)
		if run != tc.run || math.Abs(mean-tc.mean) > 1e-9 {
			t.Errorf("%s: slowRun = %d, %.2f; want %d, %.2f", tc.name, run, mean, tc.run, tc.mean)
		}
	}
	if got := busyRate([]float64{0, 1200, 1000, 800, 1000}, 900, 3); got != 1000 {
		t.Errorf("busyRate over four busy checks and a quiet one = %v, want 1000", got)
	}
	if got := busyRate([]float64{1000, 0, 1000}, 900, 3); got != 900 {
		t.Errorf("busyRate over two busy checks = %v, want the baseline, 900", got)
	}
}

// TestPolicyStateIdle: a session is idle after IdleChecks checks in a row
// with no traffic (its policy is then not asked); one check with traffic
// ends it.
func TestPolicyStateIdle(t *testing.T) {
	ps := &policyState{}
	ps.observe(4096)
	for i := 1; i <= IdleChecks; i++ {
		if ps.idle() {
			t.Fatalf("idle after %d quiet checks, want after %d", i-1, IdleChecks)
		}
		ps.observe(0)
	}
	if !ps.idle() {
		t.Fatalf("not idle after %d quiet checks", IdleChecks)
	}
	ps.observe(1)
	if ps.idle() {
		t.Fatal("still idle after a check with traffic")
	}
	ps.attached()
	for range IdleChecks - 1 {
		ps.observe(0)
	}
	if ps.idle() {
		t.Fatal("idle after fewer quiet checks than IdleChecks since attached")
	}
}
