package main

import (
	"context"
	"fmt"
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
	for s := time.Second; s <= o.overloadWait; s += time.Second {
		if err := sleepCtx(ctx, time.Until(start.Add(s))); err != nil {
			return nil, err
		}
		timeline = append(timeline, fmt.Sprintf("%ds: %s", int(s/time.Second), fmtMemberCounts(p, memberSessions(p))))
	}
	if rest := o.overloadWait - time.Since(start); rest > 0 {
		if err := sleepCtx(ctx, rest); err != nil {
			return nil, err
		}
	}
	after := memberSessions(p)
	var rep StreamReportReply
	if err := cl.call(ctx, "StreamReport", struct{}{}, &rep); err != nil {
		return nil, err
	}

	// Fair shares: equal, and weighted by the pace each member serves at.
	weights := map[string]float64{}
	var sum float64
	for _, ln := range p.members {
		w := 1.0
		if ln == slow {
			w = 1 / float64(o.slowFactor)
		}
		weights[ln.NodeName()] = w
		sum += w
	}
	clientView := map[string]int{}
	for _, r := range rep.Sessions {
		if r.Err == "" {
			clientView[r.Server]++
		}
	}
	t := &table{title: fmt.Sprintf("%d paced streams on one member of %d that slows to 1/%d of its pace (%s)", n, k, o.slowFactor, where),
		header: []string{"member", "pace", "sessions before", fmt.Sprintf("after %v", o.overloadWait), "clients say", "fair share", "× fair", "share by pace", "× by pace"}}
	for _, ln := range p.members {
		name := ln.NodeName()
		pace := "full"
		if ln == slow {
			pace = fmt.Sprintf("1/%d", o.slowFactor)
		}
		fair := float64(n) / float64(k)
		byPace := float64(n) * weights[name] / sum
		t.add(name, pace, fmt.Sprint(before[name]), fmt.Sprint(after[name]), fmt.Sprint(clientView[name]),
			fmt.Sprintf("%.0f", fair), fmt.Sprintf("%.2f", float64(after[name])/fair),
			fmt.Sprintf("%.0f", byPace), fmt.Sprintf("%.2f", float64(after[name])/byPace))
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
	t.note("sessions per member each second after the slowdown: %s", strings.Join(timeline, "; "))
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
