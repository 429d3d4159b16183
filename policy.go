package mtcp

import (
	"context"
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
	// a pool member; it returns the address of a member to move to, or "".
	Check(s PolicyStats) string
}

// PolicyStats is what a MovePolicy sees of a session.
type PolicyStats struct {
	Current  Member        // the member serving the session
	Members  []Member      // the pool as last told
	Rate     float64       // bytes per second through the session in the last second (both ways)
	Baseline float64       // the session's recent rate while it was busy (moving average)
	Stalled  time.Duration // how long written bytes have waited for the server with no progress
	Attached time.Duration // how long the session has been on this server
	// Recent holds the rates of the last checks (at most RecentChecks),
	// oldest first, since the session attached to this server or the
	// policy last asked it to move; Rate is the last of them.
	Recent []float64
}

// RecentChecks is how many of a session's latest rates PolicyStats.Recent holds.
const RecentChecks = 16

// DefaultPolicy is the migration policy of a Dialer without one, after
// M-TCP: obey the server's requests, and move when the server stalls or
// when the session's traffic, while it flows, stays well below its recent
// level while another member carries fewer sessions. It moves to another
// member chosen at random, weighted by its spare capacity (ChooseMember):
// the many clients of a member that slows, judging alike from the same
// view, spread over the pool instead of all moving to the least loaded
// member. (A server that cannot be reached at all is left by the reconnect
// logic.)
type DefaultPolicy struct {
	StallAfter time.Duration // move after written bytes waited this long (default 5 s)
	DropRatio  float64       // "well below": under this fraction of the baseline (default 0.3)
	DropFor    int           // for this many checks in a row (default 3)
	Settle     time.Duration // stay at least this long after a move (default 10 s)
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
	if s.Attached < settle {
		return ""
	}
	if s.Stalled >= stall {
		if m, ok := ChooseMember(s.Members, s.Current.Name); ok {
			return m.Addr
		}
		return ""
	}
	if lowFor(s, ratio) < drop {
		return ""
	}
	// Only to members that carry fewer sessions than this one.
	var fewer []Member
	for _, m := range s.Members {
		if m.Sessions < s.Current.Sessions {
			fewer = append(fewer, m)
		}
	}
	if m, ok := ChooseMember(fewer, s.Current.Name); ok {
		return m.Addr
	}
	return ""
}

// lowFor counts the latest checks in a row whose rate was under ratio times
// the baseline but not nil: a session with no traffic at all is quiet, not
// slow (the stall rule covers written bytes that do not get through).
func lowFor(s PolicyStats, ratio float64) int {
	if s.Baseline <= 0 {
		return 0
	}
	k := 0
	for i := len(s.Recent) - 1; i >= 0 && s.Recent[i] > 0 && s.Recent[i] < ratio*s.Baseline; i-- {
		k++
	}
	return k
}

// ChooseMember chooses a member to move a session to among members, other
// than the one called except and those draining: at random, weighted by
// spare capacity, so that many clients choosing from the same view at once
// spread over the members in proportion to what each lacks of an even
// share instead of all choosing the least loaded one. It reports false if
// no member qualifies.
func ChooseMember(members []Member, except string) (Member, bool) {
	return chooseMember(members, except, randomFloat)
}

// randomFloat is a uniform draw in [0, 1), safe for concurrent use.
func randomFloat() float64 { return rand.Float64() }

// chooseMember is ChooseMember with its source of randomness.
func chooseMember(members []Member, except string, random func() float64) (Member, bool) {
	var c []Member
	loads := make([]float64, 0, len(members))
	total := 0.0
	for _, m := range members {
		total += float64(m.Sessions)
		if m.Name == except || m.Draining {
			continue
		}
		c = append(c, m)
		loads = append(loads, float64(m.Sessions))
	}
	if len(c) == 0 {
		return Member{}, false
	}
	// As many sessions as the pool holds per candidate may come (the
	// sessions of a member that all its clients leave): each candidate's
	// spare capacity is what it lacks of the level that brings them to,
	// and one more, so that every candidate stays possible.
	w := pool.Spare(loads, max(1, total/float64(len(c))))
	sum := 0.0
	for i := range w {
		w[i]++
		sum += w[i]
	}
	x := random() * sum
	for i := range w {
		if x < w[i] {
			return c[i], true
		}
		x -= w[i]
	}
	return c[len(c)-1], true
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
	timer       *time.Timer
	bytes       uint64    // bytes received and acknowledged, all time
	lastBytes   uint64    // at the previous check
	baseline    float64   // moving average of busy rates
	lastRelease uint64    // output release at the previous progress
	progressAt  time.Time // when output last made progress
	attachedAt  time.Time
	recent      []float64 // the latest rates, oldest first (PolicyStats.Recent)
}

// attached restarts the figures that are per server.
func (ps *policyState) attached() {
	ps.attachedAt = time.Now()
	ps.recent = ps.recent[:0]
}

// note adds a check's rate to the recent ones.
func (ps *policyState) note(rate float64) {
	if len(ps.recent) == RecentChecks {
		ps.recent = append(ps.recent[:0], ps.recent[1:]...)
	}
	ps.recent = append(ps.recent, rate)
}

const policyInterval = time.Second

// startPolicyLocked arms the policy checks of a client in a pool.
func (c *Conn) startPolicyLocked() {
	cs := c.client
	if cs == nil || !cs.pool || cs.ps != nil {
		return
	}
	cs.ps = &policyState{policy: cs.d.policy(), progressAt: time.Now(), attachedAt: time.Now()}
	cs.ps.timer = time.AfterFunc(policyInterval, c.policyCheck)
}

// policyCheck runs the policy once and re-arms.
func (c *Conn) policyCheck() {
	c.mu.Lock()
	cs := c.client
	ps := cs.ps
	if c.terminated {
		c.mu.Unlock()
		return
	}
	defer ps.timer.Reset(policyInterval)
	if c.link == nil || cs.moving != nil {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	rate := float64(ps.bytes-ps.lastBytes) / policyInterval.Seconds()
	ps.lastBytes = ps.bytes
	if rate > 0 && (ps.baseline == 0 || rate >= ps.policyBusy()) {
		ps.baseline = 0.8*ps.baseline + 0.2*rate
		if ps.baseline < rate/5 {
			ps.baseline = rate // first busy second
		}
	}
	released, _ := c.st.Retained()
	stalled := time.Duration(0)
	if released != ps.lastRelease || c.st.Sent() == released {
		ps.lastRelease, ps.progressAt = released, now
	} else {
		stalled = now.Sub(ps.progressAt)
	}
	ps.note(rate)
	server, _ := cs.memberLocked(cs.node)
	stats := PolicyStats{
		Current: server, Members: append([]Member(nil), cs.members...),
		Rate: rate, Baseline: ps.baseline, Stalled: stalled, Attached: now.Sub(ps.attachedAt),
		Recent: slices.Clone(ps.recent),
	}
	c.mu.Unlock()
	if to := ps.policy.Check(stats); to != "" {
		c.mu.Lock()
		ps.recent = ps.recent[:0] // judged anew after the move (or its failure)
		c.mu.Unlock()
		go func() {
			if err := c.Migrate(context.Background(), to); err == nil {
				c.log.Info("mtcp: policy moved the session", "to", to, "rate", rate, "baseline", stats.Baseline, "stalled", stalled)
			}
		}()
	}
}

// policyBusy is the rate above which a second counts as busy for the baseline.
func (ps *policyState) policyBusy() float64 { return ps.baseline / 2 }
