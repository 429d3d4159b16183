package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/migratory/mtcp"
)

func overloadDeadline(o *options) time.Duration {
	return o.overloadWarmup + o.overloadWait + 5*time.Minute + time.Duration(o.overloadSessions)*10*time.Millisecond
}

// runOverload opens paced streaming sessions on one member of a pool,
// lets them stream, then slows that member's application to a fraction of
// its pace, and after a while counts the sessions on each member, the
// moves each made, and checks every byte received.
func runOverload(ctx context.Context, o *options) ([]*table, error) {
	n, k := o.overloadSessions, o.overloadMembers
	if k < 2 {
		return nil, fmt.Errorf("-overload-members %d: at least 2", k)
	}
	app := &streamApp{
		chunk: o.overloadChunk,
		every: time.Duration(float64(time.Second) * float64(o.overloadChunk) / float64(o.overloadRate)),
		quit:  make(chan struct{}), echo: newEchoApp(),
	}
	tweak := func(cfg *mtcp.Config) {
		if o.balance {
			cfg.Balance = &mtcp.Balance{}
		}
	}
	p, err := startPool(ctx, o, k, tweak, app.serve)
	if err != nil {
		return nil, err
	}
	defer p.close()
	var stopApps sync.Once
	defer stopApps.Do(func() { close(app.quit) })
	cl, where, err := startClientsFor(ctx, o, 3*n+1024)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	slow := p.members[0]
	var opened OpenReply
	if err := cl.call(ctx, "StreamOpen", StreamOpenArgs{Addr: slow.Addr().String(), N: n, Dialers: o.dialers, Deadline: deadlineOf(ctx)}, &opened); err != nil {
		return nil, fmt.Errorf("opening %d sessions: %w", n, err)
	}
	if err := sleepCtx(ctx, o.overloadWarmup); err != nil {
		return nil, err
	}
	before := memberSessions(p)
	app.slow.Store(slow.NodeName(), int64(o.slowFactor))
	start := time.Now()
	var timeline []string
	var counts []map[string]int // each second after the slowdown
	for s := time.Second; s <= o.overloadWait; s += time.Second {
		if err := sleepCtx(ctx, time.Until(start.Add(s))); err != nil {
			return nil, err
		}
		now := memberSessions(p)
		counts = append(counts, now)
		timeline = append(timeline, fmt.Sprintf("%ds: %s", int(s/time.Second), fmtMemberCounts(p, now)))
	}
	if rest := o.overloadWait - time.Since(start); rest > 0 {
		if err := sleepCtx(ctx, rest); err != nil {
			return nil, err
		}
	}
	after := memberSessions(p)
	counts = append(counts, after)
	var rep StreamReportReply
	if err := cl.call(ctx, "StreamReport", struct{}{}, &rep); err != nil {
		return nil, err
	}

	// Fair shares: the sessions in proportion to the pace each member
	// serves them at (its capacity): a member that serves at a tenth of
	// the pace holds a tenth of the sessions of one at full pace, so that
	// every member is as loaded for what it can do (the pool's sessions
	// over the sum of the paces, times the member's pace). The equal share
	// is shown beside it.
	fair := fairShares(p, slow, n, o.slowFactor)
	clientView := map[string]int{}
	for _, r := range rep.Sessions {
		if r.Err == "" {
			clientView[r.Server]++
		}
	}
	t := &table{title: fmt.Sprintf("%d paced streams on one member of %d that slows to 1/%d of its pace (%s)", n, k, o.slowFactor, where),
		header: []string{"member", "pace", "sessions before", fmt.Sprintf("after %v", o.overloadWait), "clients say", "fair share (by pace)", "× fair", "within 20%", "equal share", "× equal"}}
	for _, ln := range p.members {
		name := ln.NodeName()
		pace := "full"
		if ln == slow {
			pace = fmt.Sprintf("1/%d", o.slowFactor)
		}
		equal := float64(n) / float64(k)
		ratio := float64(after[name]) / fair[name]
		t.add(name, pace, fmt.Sprint(before[name]), fmt.Sprint(after[name]), fmt.Sprint(clientView[name]),
			fmt.Sprintf("%.0f", fair[name]), fmt.Sprintf("%.2f", ratio), yesNo(ratio >= 1-fairSlack && ratio <= 1+fairSlack),
			fmt.Sprintf("%.0f", equal), fmt.Sprintf("%.2f", float64(after[name])/equal))
	}
	var maxMoves, failedOver, verified, broken int
	var bytesOK uint64
	moves := map[int]int{}
	why := map[string]int{}
	for _, r := range rep.Sessions {
		m := r.Moved + r.FailedOver
		moves[m]++
		maxMoves = max(maxMoves, m)
		if r.FailedOver > 0 {
			failedOver++
		}
		if r.Verified {
			verified++
			bytesOK += r.Bytes
		} else {
			broken++
			why[r.Err]++
		}
	}
	rate := float64(o.overloadRate) / 1024
	t.note("each session streams %d B writes at %.0f KiB/s (1/%d of it on the slow member), the application checkpointing (seed, offset) after each; %v of streaming before the slowdown", o.overloadChunk, rate, o.slowFactor, o.overloadWarmup)
	if o.balance {
		t.note("members run Config.Balance with its defaults")
	} else {
		t.note("no Config.Balance: the clients' DefaultPolicy alone decides")
	}
	t.note("moves per session (live or failover): sessions %s; at most %d; %d sessions failed over", histogram(moves), maxMoves, failedOver)
	t.note("bytes verified (SHA-256 of what arrived = of what the pattern holds): %d sessions, %d bytes; %d sessions not verified", verified, bytesOK, broken)
	for _, e := range topErrors(why, 5) {
		t.note("not verified: %s", e)
	}
	t.note("fair share: the sessions in proportion to the pace each member serves at (the slow member's capacity is 1/%d of the others'), n × pace / Σ paces", o.slowFactor)
	if at, ok := settledAt(counts, fair); ok {
		t.note("settled: every member within %.0f%% of its fair share from %ds after the slowdown on", fairSlack*100, at)
	} else {
		t.note("not settled: some member outside %.0f%% of its fair share at %v", fairSlack*100, o.overloadWait)
	}
	t.note("sessions per member each second after the slowdown: %s", strings.Join(timeline, "; "))
	t.note("load average at the end: %s", loadAverage())
	if n, errs := app.echo.errors(); n > 0 {
		t.note("server application errors: %d, commonest: %s", n, errs)
	}
	cl.closeAll(o.settle)
	stopApps.Do(func() { close(app.quit) })
	p.noteStuck(t)
	for msg := range why {
		if strings.Contains(msg, "differs from what was sent") {
			return []*table{t}, fmt.Errorf("%w: %s", errIntegrity, msg)
		}
	}
	return []*table{t}, nil
}

// memberSessions counts the sessions each member holds.
func memberSessions(p *testPool) map[string]int {
	out := map[string]int{}
	for _, ln := range p.members {
		out[ln.NodeName()] = ln.Sessions()
	}
	return out
}

func fmtMemberCounts(p *testPool, m map[string]int) string {
	var parts []string
	for _, ln := range p.members {
		parts = append(parts, fmt.Sprint(m[ln.NodeName()]))
	}
	return strings.Join(parts, "/")
}

// fairSlack is how far from its fair share a member may be and still hold it.
const fairSlack = 0.2

// fairShares returns each member's fair share of n sessions: in proportion
// to the pace it serves at (slow at 1/factor, the others at full pace).
func fairShares(p *testPool, slow *mtcp.Listener, n, factor int) map[string]float64 {
	weights := map[string]float64{}
	var sum float64
	for _, ln := range p.members {
		w := 1.0
		if ln == slow {
			w = 1 / float64(factor)
		}
		weights[ln.NodeName()] = w
		sum += w
	}
	out := map[string]float64{}
	for name, w := range weights {
		out[name] = float64(n) * w / sum
	}
	return out
}

// settledAt returns the second (counts[i] is second i+1) from which every
// count stays within fairSlack of its fair share through the last.
func settledAt(counts []map[string]int, fair map[string]float64) (int, bool) {
	at := -1
	for i := len(counts) - 1; i >= 0; i-- {
		ok := true
		for name, f := range fair {
			if r := float64(counts[i][name]) / f; r < 1-fairSlack || r > 1+fairSlack {
				ok = false
			}
		}
		if !ok {
			break
		}
		at = i
	}
	if at < 0 {
		return 0, false
	}
	return min(at+1, len(counts)-1), true
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// loadAverage returns the system's load averages (1, 5 and 15 minutes).
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
