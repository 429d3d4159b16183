package mtcp

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/migratory/mtcp/pool"
)

// MovePolicy decides when a client moves its session, and where to.
// One policy serves every session of a Dialer, and its methods are called
// from the sessions' own goroutines, concurrently: a policy must be safe for
// concurrent use. It needs no state of its own per session: PolicyStats
// carries the session's recent history.
type MovePolicy interface {
	// MoveRequested is called when the server asks the session to move to
	// the member at addr; it returns the address to move to ("" to stay).
	MoveRequested(addr string, reason MoveReason) string
	// Check is called about once a second while the session is attached to
	// a pool member, but not while it is idle (no traffic and nothing
	// outstanding over the last IdleChecks checks); it returns the address
	// of a member to move to, or "". The session moves at a moment drawn
	// within the next second: the clients of a member, judging alike at
	// once, do not all move at once. The checks of all sessions run on
	// one goroutine: Check must not block.
	Check(s PolicyStats) string
}

// PolicyStats is what a MovePolicy sees of a session.
type PolicyStats struct {
	Current  Member        // the member serving the session
	Members  []Member      // the pool as last told
	Rate     float64       // bytes per second through the session since the last check (both ways)
	Baseline float64       // the session's recent rate while it was busy (moving average)
	Stalled  time.Duration // how long written bytes have waited for the server with no progress
	Attached time.Duration // how long the session has been on this member
	// Recent holds the rates of the last checks (at most RecentChecks),
	// oldest first, since the session attached to this member or the
	// policy last asked it to move; Rate is the last of them.
	Recent []float64
	// Checks counts the checks since the session attached to this member
	// or the policy last asked it to move: Recent holds the latest of them.
	Checks int
}

// RecentChecks is how many of a session's latest rates PolicyStats.Recent holds.
const RecentChecks = 16

// IdleChecks is how many checks in a row with no traffic and nothing
// outstanding make a session idle: its policy is not asked again until
// traffic comes or output waits (DefaultPolicy judges such a session
// quiet, not slow, after 2×DropFor of them).
const IdleChecks = 8

// DefaultPolicy is the move policy of a Dialer without one, after
// M-TCP: obey the server's requests, and move when its member stalls or
// when the session's traffic, while it flows, stays well below its recent
// level while the member holds more than its share of the pool's sessions
// for the pace it serves them at.
//
// The pace is the session's own: its rate over the checks it has been
// slow, against its rate over the busy checks before them. A member that
// serves its sessions at a tenth of their pace has a tenth of the share of
// a member that serves them at full pace (the others are taken to serve at
// full pace: their clients judge them). Its clients, judging alike from
// the same view at once, each move with the probability that moves the
// member's excess in all, and judge again only 2×DropFor checks later,
// when the view shows the moves: the member keeps about its share rather
// than losing all its sessions. Each moves to another member chosen at
// random, weighted by its spare capacity (pool.Choose), among those that hold fewer sessions than it
// (by more than Slack, their sessions weighed by how they serve as their
// published rates show) and than a member at full pace should: the
// sessions spread over the pool instead of all moving to the least loaded
// member, and seldom to a member that serves slowly too. A member that
// balances (Member.Balancing, Config.Balance) sheds its excess itself,
// sized to it: its clients leave throughput moves to it, lest both move
// the excess. (A member that cannot be reached at all is left by the
// reconnect logic.)
type DefaultPolicy struct {
	StallAfter time.Duration // move after written bytes waited this long (default 5 s)
	DropRatio  float64       // "well below": under this fraction of the baseline (default 0.3)
	// DropFor is how many checks in a row below the baseline, at a rate
	// well below it over them, make the session slow (default 3); a slow
	// session is judged then, and again every 2×DropFor checks while it
	// stays slow. Checks with no traffic at all count among them (a slow
	// pace shows as a write now and then), but twice DropFor of them in a
	// row make the session quiet, not slow.
	DropFor int
	Settle  time.Duration // stay at least this long after a move (default 10 s)
	// Slack is how far above its share by pace a member may hold sessions
	// before its slow sessions leave (default 0.2: 20% above).
	Slack float64

	random func() float64 // a uniform draw in [0, 1) (nil: randomFloat)
}

// MoveRequested obeys the server.
func (p *DefaultPolicy) MoveRequested(addr string, _ MoveReason) string { return addr }

// Check applies the stall and throughput rules.
func (p *DefaultPolicy) Check(s PolicyStats) string {
	settle := p.Settle
	if settle == 0 {
		settle = 10 * time.Second
	}
	stall := p.StallAfter
	if stall == 0 {
		stall = 5 * time.Second
	}
	ratio := p.DropRatio
	if ratio == 0 {
		ratio = 0.3
	}
	drop := p.DropFor
	if drop == 0 {
		drop = 3
	}
	slack := p.Slack
	if slack == 0 {
		slack = 0.2
	}
	random := p.random
	if random == nil {
		random = randomFloat
	}
	if s.Attached < settle {
		return ""
	}
	if s.Stalled >= stall {
		if m, ok := ChooseMember(s.Members, s.Current.Name); ok {
			return m.Addr
		}
		return ""
	}
	if s.Current.Balancing {
		return "" // the member sheds the sessions above its share itself
	}
	run, mean := slowRun(s.Recent, s.Baseline, ratio, drop)
	if run < drop {
		return ""
	}
	busy := busyRate(s.Recent[:len(s.Recent)-run], s.Baseline, drop)
	// Judged at the first check that finds it slow, and every 2×drop
	// checks after: the moves of the others judging alike, spread over a
	// check and taking a while each, show in the view meanwhile.
	from := run // how far into the run the first check found it slow
	for j := drop; j < run; j++ {
		if k, _ := slowRun(s.Recent[:len(s.Recent)-run+j], s.Baseline, ratio, drop); k >= drop {
			from = j
			break
		}
	}
	if run == len(s.Recent) && s.Checks > run {
		run, from = s.Checks, drop // slow since before the oldest rate kept
	}
	if (run-from)%(2*drop) != 0 {
		return ""
	}
	pace := min(max(mean/busy, pool.MinPace), 1)
	share, level := sharesByPace(s.Members, s.Current.Name, pace)
	held := float64(s.Current.Sessions)
	if held <= share*(1+slack) {
		return ""
	}
	// Each of the member's clients moves with the probability that moves
	// its excess in all.
	if random() >= (held-share)/held {
		return ""
	}
	// Only to members lighter than this one by more than the slack, their
	// loads weighed by how each serves as their published rates show
	// (pool.Paces, judged among all the members): a pace that drops for
	// all (a loaded client, a loaded pool) must not send sessions back and
	// forth between members alike, while a member that the others' rates
	// show slow sheds to members that hold more sessions but serve them
	// well. Where among them is weighed by spare capacity (pool.Choose).
	all := poolMembers(s.Members)
	paces := pool.Paces(all) // judged among all the members, once
	heldLoad := held
	if i := slices.IndexFunc(s.Members, func(m Member) bool { return m.Name == s.Current.Name }); i >= 0 {
		heldLoad = held / paces[i]
	}
	lighter := func(i int) bool {
		m := s.Members[i]
		return m.Name != s.Current.Name && !m.Draining && float64(m.Sessions) < level &&
			float64(m.Sessions)/paces[i]*(1+slack) < heldLoad
	}
	if i := pool.Choose(all, paces, lighter, random); i >= 0 {
		return s.Members[i].Addr
	}
	return ""
}

// slowRun returns how many of the latest rates in recent were in a row
// under baseline by more than halfway to ratio times it, and their mean,
// if that mean is under ratio times the baseline: the session is slow over
// them. The oldest of them straddles the change, and its rate counts only
// if it is no more than the mean of the others (it was slow throughout).
// A slow pace shows as a write now and then between checks with none, so
// each check is not judged alone. It returns 0 unless some of them but the
// oldest had traffic and the last 2×drop had some: a session with no
// traffic is quiet, not slow (the stall rule covers written bytes that do
// not get through).
func slowRun(recent []float64, baseline, ratio float64, drop int) (int, float64) {
	if baseline <= 0 {
		return 0, 0
	}
	k, quiet, sum, oldest := 0, 0, 0.0, 0.0
	for i := len(recent) - 1; i >= 0 && recent[i] < (1+ratio)/2*baseline; i-- {
		if recent[i] <= 0 && quiet == k {
			quiet++
		}
		sum += recent[i]
		oldest = recent[i]
		k++
	}
	if k < 2 {
		return 0, 0
	}
	sum -= oldest
	if sum <= 0 || quiet >= 2*drop || sum/float64(k-1) >= ratio*baseline {
		return 0, 0
	}
	if oldest <= sum/float64(k-1) {
		return k, (sum + oldest) / float64(k) // slow throughout
	}
	return k, sum / float64(k-1)
}

// busyRate returns the rate a session's pace over its latest slow checks
// is judged against: the mean of the latest busy checks (at least half the
// baseline) before them, up to 2×drop of them, if there are at least drop;
// else the baseline. The baseline, a moving average taken as the checks
// come, has often taken in the check that straddles the drop (the oldest
// of the slow ones, at about half the busy rate), which lowers it by about
// a tenth: the pace would be judged a tenth faster than it is.
func busyRate(before []float64, baseline float64, drop int) float64 {
	sum, n := 0.0, 0
	for i := len(before) - 1; i >= 0 && n < 2*drop; i-- {
		if before[i] >= baseline/2 {
			sum += before[i]
			n++
		}
	}
	if n < drop {
		return baseline
	}
	return sum / float64(n)
}

// sharesByPace returns the sessions of members the member called current
// should hold, serving them at pace, and those a member that serves at
// full pace should hold: the pool's sessions in proportion to the pace of
// the members that take sessions (the others at full pace; the draining
// ones take none). The others' published paces do not count here: a
// member that just took many sessions shows a low rate per session until
// they stream again, and counting it slow would keep sessions on the slow
// member; where the sessions go weighs them (pool.Choose).
func sharesByPace(members []Member, current string, pace float64) (share, level float64) {
	total, capacity := 0.0, pace
	for _, m := range members {
		total += float64(m.Sessions)
		if m.Name != current && !m.Draining {
			capacity++
		}
	}
	return total * pace / capacity, total / capacity
}

// ChooseMember chooses a member to move a session to among members, other
// than the one called except and those draining: at random, weighted by
// spare capacity (pool.Choose), so that many clients choosing from the
// same view at once spread over the members in proportion to what each
// lacks of its share instead of all choosing the least loaded one, and
// few choose a member that serves its sessions slowly. It reports false
// if no member qualifies.
func ChooseMember(members []Member, except string) (Member, bool) {
	return chooseMember(members, except, randomFloat)
}

// randomFloat is a uniform draw in [0, 1), safe for concurrent use.
func randomFloat() float64 { return rand.Float64() }

// chooseMember is ChooseMember with its source of randomness.
func chooseMember(members []Member, except string, random func() float64) (Member, bool) {
	all := poolMembers(members)
	i := pool.Choose(all, pool.Paces(all), func(i int) bool {
		return members[i].Name != except && !members[i].Draining
	}, random)
	if i < 0 {
		return Member{}, false
	}
	return members[i], true
}

func (d *Dialer) policy() MovePolicy {
	if d.Policy != nil {
		return d.Policy
	}
	return &DefaultPolicy{}
}

// policyState tracks a client session's figures for its policy.
type policyState struct {
	policy      MovePolicy
	check       *timerEntry // the next check, on policyTimers
	bytes       uint64      // bytes received and acknowledged, all time
	lastBytes   uint64      // at the previous check
	lastAt      time.Time   // when the previous check counted bytes
	baseline    float64     // moving average of busy rates
	lastRelease uint64      // output release at the previous progress
	progressAt  time.Time   // when output last made progress
	attachedAt  time.Time
	recent      []float64 // the latest rates, oldest first (PolicyStats.Recent)
	checks      int       // checks since attached or asked to move (PolicyStats.Checks)
	moveSoon    bool      // the policy chose a move that has not started yet
}

// attached restarts the figures that are per member.
func (ps *policyState) attached() {
	ps.attachedAt = time.Now()
	ps.recent, ps.checks = ps.recent[:0], 0
}

// observe takes in a check's rate: into the baseline if the check was
// busy, and among the recent rates.
func (ps *policyState) observe(rate float64) {
	if rate > 0 && (ps.baseline == 0 || rate >= ps.policyBusy()) {
		ps.baseline = 0.8*ps.baseline + 0.2*rate
		if ps.baseline < rate/5 {
			ps.baseline = rate // first busy second
		}
	}
	ps.note(rate)
}

// note adds a check's rate to the recent ones.
func (ps *policyState) note(rate float64) {
	if len(ps.recent) == RecentChecks {
		ps.recent = append(ps.recent[:0], ps.recent[1:]...)
	}
	ps.recent = append(ps.recent, rate)
	ps.checks++
}

// idle reports whether the latest IdleChecks rates are all 0.
func (ps *policyState) idle() bool {
	if len(ps.recent) < IdleChecks {
		return false
	}
	for _, r := range ps.recent[len(ps.recent)-IdleChecks:] {
		if r > 0 {
			return false
		}
	}
	return true
}

const policyInterval = time.Second

// policyTimers runs the policy checks of client sessions: one timer and one
// goroutine for them all, not a timer each that starts a goroutine every
// second. One set serves the process, since a Dialer is a plain value that
// may be copied.
var policyTimers = newTimerSet()

// startPolicyLocked arms the policy checks of a client in a pool.
func (c *Conn) startPolicyLocked() {
	cs := c.client
	if cs == nil || !cs.pool || cs.ps != nil {
		return
	}
	now := time.Now()
	cs.ps = &policyState{policy: cs.d.policy(), progressAt: now, attachedAt: now, lastAt: now}
	cs.ps.check = policyTimers.entry(c.policyCheck)
	cs.ps.check.schedule(policyInterval)
}

// policyCheck runs the policy once and re-arms.
func (c *Conn) policyCheck() {
	c.mu.Lock()
	cs := c.client
	ps := cs.ps
	if c.ended {
		c.mu.Unlock()
		return
	}
	defer ps.check.schedule(policyInterval)
	if c.link == nil || cs.moving != nil || ps.moveSoon {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	// Over the time since the bytes were last counted: a check can come
	// late, or not count (while the session moves).
	rate := float64(ps.bytes-ps.lastBytes) / max(now.Sub(ps.lastAt), policyInterval/2).Seconds()
	ps.lastBytes, ps.lastAt = ps.bytes, now
	released, _ := c.st.Retained()
	stalled := time.Duration(0)
	if released != ps.lastRelease || c.st.Sent() == released {
		ps.lastRelease, ps.progressAt = released, now
	} else {
		stalled = now.Sub(ps.progressAt)
	}
	ps.observe(rate)
	if rate == 0 && c.st.Sent() == released && ps.idle() {
		c.mu.Unlock()
		return // nothing for the policy to judge
	}
	server, _ := cs.memberLocked(cs.member)
	stats := PolicyStats{
		Current: server, Members: append([]Member(nil), cs.members...),
		Rate: rate, Baseline: ps.baseline, Stalled: stalled, Attached: now.Sub(ps.attachedAt),
		Recent: slices.Clone(ps.recent), Checks: ps.checks,
	}
	c.mu.Unlock()
	if to := ps.policy.Check(stats); to != "" {
		c.mu.Lock()
		ps.recent, ps.checks = ps.recent[:0], 0 // judged anew after the move (or its failure)
		ps.moveSoon = true                      // no other move is chosen meanwhile
		c.mu.Unlock()
		go func() {
			defer func() {
				c.mu.Lock()
				ps.moveSoon = false
				c.mu.Unlock()
			}()
			// Clients that judge alike from the same view move at moments
			// spread over a check, not all at once: members take a herd's
			// handshakes and handovers a few at a time.
			t := time.NewTimer(time.Duration(randomFloat() * float64(policyInterval)))
			defer t.Stop()
			select {
			case <-t.C:
			case <-c.endedCh:
				return
			case <-c.closeCalled:
				return
			}
			if err := c.Migrate(context.Background(), to); err == nil {
				if logOn(c.log, slog.LevelInfo) {
					c.log.Info("mtcp: policy moved the session", "to", to, "rate", rate, "baseline", stats.Baseline, "stalled", stalled)
				}
			}
		}()
	}
}

// policyBusy is the rate above which a second counts as busy for the baseline.
func (ps *policyState) policyBusy() float64 { return ps.baseline / 2 }
