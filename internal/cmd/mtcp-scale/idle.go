package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"
)

func idleDeadline(o *options) time.Duration {
	return time.Duration(o.count*len(allKinds)) * (o.idleInterval + o.idleSettle + 90*time.Second)
}

// runIdle opens N idle sessions of each kind, then measures what they hold
// (heap and stacks, goroutines) and the CPU they use while nothing is sent,
// both ends together.
func runIdle(ctx context.Context, o *options) ([]*table, error) {
	n := o.idleSessions
	cl, where, err := startClientsFor(ctx, o, 2*n+512)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	t := &cmpTable{title: fmt.Sprintf("%d idle sessions, both ends (%s)", n, where), kinds: o.kindsOf(allKinds)}
	t.notes = append(t.notes,
		"heap: live heap after two collections; stacks: goroutine stacks in use; both as growth over the processes' state before opening, divided by the sessions",
		fmt.Sprintf("CPU: user and system time of the processes over %v of idleness, as a percentage of one core (process baseline included)", o.idleInterval),
		"applications hold each connection without a goroutine of their own; yamux with its default configuration")
	tables := []*table{}
	// What the processes use with no session open, for reference.
	c0, cc0, err := bothCPU(ctx, cl)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := sleepCtx(ctx, o.idleInterval); err != nil {
		return nil, err
	}
	c1, cc1, err := bothCPU(ctx, cl)
	if err != nil {
		return nil, err
	}
	t.notes = append(t.notes, fmt.Sprintf("with no session open, the processes used %s of one core over the same interval",
		fmtPct(float64(c1-c0+cc1-cc0)/float64(time.Since(start))*100)))
	for range o.count {
		for _, kind := range t.kinds {
			m, err := idleOnce(ctx, o, cl, kind, n)
			if err != nil {
				return append(tables, t.table()), err
			}
			t.add("heap + stacks per session", kind, m.bytes, fmtKiB)
			t.add("goroutines per session", kind, m.goroutines, fmtCount)
			t.add(fmt.Sprintf("CPU of all %d, %% of one core", n), kind, m.cpu, fmtPct)
			t.add("sessions that failed to open", kind, float64(m.failed), fmtCount)
			for _, e := range m.errors {
				t.notes = append(t.notes, fmt.Sprintf("%s: %s", kindNames[kind], e))
			}
		}
	}
	return append(tables, t.table()), nil
}

// idleFigures are one idle run's figures per session (CPU for all).
type idleFigures struct {
	bytes, goroutines, cpu float64
	failed                 int      // sessions that did not open (the figures are of those that did)
	errors                 []string // why, and other remarks
}

func idleOnce(ctx context.Context, o *options, cl *clients, kind string, n int) (idleFigures, error) {
	var f idleFigures
	srv, err := startServer(kind, nil)
	if err != nil {
		return f, err
	}
	base := readStats(true)
	defer func() {
		cl.closeAll(o.settle)
		srv.close()
		settleGoroutines(base.Goroutines+16, o.settle)
	}()
	cbase, err := cl.stats(ctx, true)
	if err != nil {
		return f, err
	}
	var rep OpenReply
	if err := cl.call(ctx, "Open", OpenArgs{Kind: kind, Addr: srv.addr(), N: n, Dialers: o.dialers, Deadline: deadlineOf(ctx)}, &rep); err != nil {
		return f, fmt.Errorf("opening %d %s sessions: %w", n, kind, err)
	}
	f.failed = rep.Failed
	for _, e := range rep.Errors {
		f.errors = append(f.errors, "failed to open: "+e)
	}
	if err := srv.waitAccepted(ctx, rep.Opened); err != nil {
		return f, err
	}
	n = rep.Opened
	if err := sleepCtx(ctx, o.idleSettle); err != nil {
		return f, err
	}
	after := readStats(true)
	cafter, err := cl.stats(ctx, true)
	if err != nil {
		return f, err
	}
	grow := func(a, b ProcStats) float64 {
		return float64(int64(b.Heap+b.Stacks) - int64(a.Heap+a.Stacks))
	}
	f.bytes = (grow(base, after) + grow(cbase, cafter)) / float64(n)
	f.goroutines = float64(after.Goroutines-base.Goroutines+cafter.Goroutines-cbase.Goroutines) / float64(n)

	c0, cc0, err := bothCPU(ctx, cl)
	if err != nil {
		return f, err
	}
	start := time.Now()
	if err := sleepCtx(ctx, o.idleInterval); err != nil {
		return f, err
	}
	c1, cc1, err := bothCPU(ctx, cl)
	if err != nil {
		return f, err
	}
	f.cpu = float64(c1-c0+cc1-cc0) / float64(time.Since(start)) * 100
	if kind == kindMTCP {
		var clientUp int
		if err := cl.call(ctx, "Attached", struct{}{}, &clientUp); err != nil {
			return f, err
		}
		srv.mu.Lock()
		serverUp := attachedOf(srv.held)
		srv.mu.Unlock()
		if clientUp < n || serverUp < n {
			f.errors = append(f.errors, fmt.Sprintf("after the measurement, %d of the %d sessions had their link up at the client, %d at the server", clientUp, n, serverUp))
		}
	}
	return f, nil
}

// bothCPU reads this process's CPU time and the client process's (zero
// when the clients live here).
func bothCPU(ctx context.Context, cl *clients) (time.Duration, time.Duration, error) {
	own := cpuTime()
	s, err := cl.stats(ctx, false)
	return own, s.CPU, err
}

// startClientsFor starts the agent of a scenario that needs about fds open
// files with both ends in this process, and says where it runs.
func startClientsFor(ctx context.Context, o *options, fds int) (*clients, string, error) {
	child := o.needChild(fds)
	cl, err := startClients(ctx, child)
	if err != nil {
		return nil, "", err
	}
	where := "clients in this process"
	if child {
		where = fmt.Sprintf("clients in a child process, its open files limit %d", cl.limit)
	}
	return cl, where, nil
}

// settleGoroutines waits (a bounded time) for the goroutines of closed
// sessions to end, returns the memory they held to the system, and waits
// for the process to go quiet (under 1% of a core over
// a quarter of a second at most), so that the next run starts from a still process.
func settleGoroutines(limit int, within time.Duration) {
	end := time.Now().Add(within)
	for runtime.NumGoroutine() > limit && time.Now().Before(end) {
		time.Sleep(20 * time.Millisecond)
	}
	// Return the freed heap to the system now, or the scavenger would do
	// it in the background during the next measurement.
	debug.FreeOSMemory()
	window := min(250*time.Millisecond, within/4)
	for time.Now().Before(end) {
		c0 := cpuTime()
		time.Sleep(window)
		if cpuTime()-c0 < window/100 {
			return
		}
	}
}
