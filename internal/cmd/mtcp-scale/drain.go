package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

func drainDeadline(o *options) time.Duration {
	return o.drainTimeout + 5*time.Minute + time.Duration(o.drainSessions)*10*time.Millisecond
}

const drainRound = 1 << 10 // bytes per echo round

// runDrain fills one member of a 3-member pool with checkpointing echo
// sessions, drains it while some of them echo, then has every session echo
// once more and end: it reports how long Drain took, the sessions lost, how
// often each moved and whether every byte came back as sent.
func runDrain(ctx context.Context, o *options) ([]*table, error) {
	n := o.drainSessions
	app := newEchoApp()
	p, err := startPool(ctx, o, 3, nil, app.serve)
	if err != nil {
		return nil, err
	}
	defer p.close()
	cl, where, err := startClientsFor(ctx, o, 3*n+1024)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	m0 := p.members[0]
	var opened EchoOpenReply
	if err := cl.call(ctx, "EchoOpen", EchoOpenArgs{Addr: m0.Addr().String(), N: n, Dialers: o.dialers, Round: drainRound, Deadline: deadlineOf(ctx)}, &opened); err != nil {
		return nil, fmt.Errorf("opening %d sessions: %w", n, err)
	}
	asked := n
	n -= opened.Failed
	// Every session should be on m0 now; where some are not, the drain
	// goes on with those that are, and the table says where the others were.
	for wait := time.Now().Add(time.Minute); m0.Sessions() < n && time.Now().Before(wait); {
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
	before := memberSessions(p)
	if err := cl.call(ctx, "EchoBusy", BusyArgs{Every: busyEvery(n, o.drainBusy), Round: drainRound, Pause: 20 * time.Millisecond}, &struct{}{}); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
		return nil, err
	}

	// Watch the member empty.
	var emptyAt atomic.Int64
	start := time.Now()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for emptyAt.Load() == 0 {
			if m0.Sessions() == 0 {
				emptyAt.Store(int64(time.Since(start)))
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var clientsBefore, clientsAfter ProcStats
	if cl.remote {
		if err := cl.call(ctx, "Stats", false, &clientsBefore); err != nil {
			return nil, err
		}
	}
	stopProfile, err := drainProfile(ctx, o, cl)
	if err != nil {
		return nil, err
	}
	cpuBefore := cpuTime()
	dctx, cancel := context.WithTimeout(ctx, o.drainTimeout)
	derr := m0.Drain(dctx)
	cancel()
	took := time.Since(start)
	cpuDrain := cpuTime() - cpuBefore
	stopProfile()
	if cl.remote {
		if err := cl.call(ctx, "Stats", false, &clientsAfter); err != nil {
			return nil, err
		}
	}
	emptyAt.CompareAndSwap(0, -1)
	<-watchDone

	var fin EchoFinishReply
	if err := cl.call(ctx, "EchoFinish", FinishArgs{Round: drainRound, Dialers: o.dialers, Deadline: deadlineOf(ctx)}, &fin); err != nil {
		return nil, err
	}

	t := &table{title: fmt.Sprintf("drain of one member of 3 holding %d checkpointing sessions (%s)", n, where), header: []string{"", "mtcp"}}
	if before["m0"] != n {
		t.add("sessions on each member when the drain began", fmt.Sprintf("%s (of %d opened, all on m0)", countsByName(before), n))
	}
	if opened.Failed > 0 {
		t.add("sessions that failed to open (before the drain)", fmt.Sprintf("%d of %d", opened.Failed, asked))
		for _, e := range opened.Errors {
			t.note("failed to open: %s", e)
		}
	}
	drained := fmtDur(took)
	if derr != nil {
		drained += " (" + derr.Error() + ")"
	}
	t.add("Drain returned after", drained)
	if at := time.Duration(emptyAt.Load()); at > 0 {
		t.add("the member held no session after", fmtDur(at))
	} else {
		t.add("the member held no session after", "never, while Drain ran")
	}
	var lost, corrupt, intact, failedOver, resumed, maxMoves, maxEpochs, disagree int
	moves, epochs := map[int]int{}, map[int]int{}
	servers := map[string]int{}
	lostWhy := map[string]int{}
	var pauses []time.Duration
	for _, r := range fin.Sessions {
		if r.Moved+r.FailedOver > 0 {
			pauses = append(pauses, r.Longest)
		}
		k := r.Moved + r.FailedOver
		moves[k]++
		maxMoves = max(maxMoves, k)
		epochs[int(r.Epochs)]++
		if uint64(k) != r.Epochs {
			disagree++
		}
		maxEpochs = max(maxEpochs, int(r.Epochs))
		if r.FailedOver > 0 {
			failedOver++
		}
		resumed += r.Resumed
		if strings.Contains(r.Err, errEchoDiffers.Error()) {
			corrupt++
		}
		if r.Err != "" {
			lost++
			lostWhy[r.Err]++
			continue
		}
		servers[r.Server]++
		switch d := app.digest(r.ID); {
		case d == nil:
			lost++
			lostWhy["the application never saw the end of the input"]++
		case !bytes.Equal(d, r.SentDigest) || !r.Intact:
			corrupt++
		default:
			intact++
		}
	}
	if cl.remote {
		t.add("CPU used while Drain ran: servers, clients", fmt.Sprintf("%v, %v", cpuDrain.Round(time.Millisecond),
			(clientsAfter.CPU-clientsBefore.CPU).Round(time.Millisecond)))
	} else {
		t.add("CPU used while Drain ran (servers and clients)", cpuDrain.Round(time.Millisecond).String())
	}
	t.add("sessions lost", fmt.Sprintf("%d of %d", lost, n))
	t.add("epoch raises per session (moves to another member): sessions", histogram(epochs))
	t.add("most epoch raises of one session", fmt.Sprint(maxEpochs))
	t.add("moves per session by the client's Metrics (Moved + FailedOver): sessions", histogram(moves))
	t.add("most moves of one session by the Metrics", fmt.Sprint(maxMoves))
	t.add("sessions that failed over (Metrics.FailedOver: taken from replicas)", fmt.Sprint(failedOver))
	t.add("resumes (Metrics.Resumed)", fmt.Sprint(resumed))
	if len(pauses) > 0 {
		slices.Sort(pauses)
		t.add("longest pause of each moved session (Metrics): p50, p99, max", fmt.Sprintf("%v, %v, %v",
			percentile(pauses, 50).Round(time.Millisecond), percentile(pauses, 99).Round(time.Millisecond), pauses[len(pauses)-1].Round(time.Millisecond)))
	}
	t.add("echoes intact (SHA-256 of input, echo and application agree)", fmt.Sprintf("%d of %d", intact, n))
	t.add("sessions per member after", countsByName(servers))
	busy := 0
	if e := busyEvery(n, o.drainBusy); e > 0 {
		busy = (n + e - 1) / e
	}
	t.add("rounds echoed while draining", fmt.Sprintf("%d (by %d sessions, %d B each, 20 ms apart)", fin.BusyRounds, busy, drainRound))
	t.note("epoch raises: Conn.Status().Epoch at the end less at the start; they differ from the Metrics' count for %d sessions", disagree)
	t.note("opening the %d sessions on m0 (with a first echo each) took %v", n, opened.Elapsed.Round(time.Millisecond))
	t.note("the application echoes and checkpoints (bytes consumed, SHA-256 state) after every write; members keep 1 replica of each checkpoint; clients move only when their server asks")
	t.note("after Drain returned, every session echoed once more, ended its input and read to the end: %v", fin.Took.Round(time.Millisecond))
	for _, e := range topErrors(lostWhy, 5) {
		t.note("lost: %s", e)
	}
	if n, errs := app.errors(); n > 0 {
		t.note("server application errors: %d, commonest: %s", n, errs)
	}
	closing := time.Now()
	p.noteStuck(t)
	t.note("closing the pool took %v", time.Since(closing).Round(time.Millisecond))
	if corrupt > 0 {
		return []*table{t}, fmt.Errorf("%w: %d sessions' echoes or digests differ", errIntegrity, corrupt)
	}
	return []*table{t}, nil
}

// busyEvery spreads busy sessions of n evenly: every how many one is busy
// (0: none).
func busyEvery(n, busy int) int {
	if busy <= 0 {
		return 0
	}
	return max(1, n/busy)
}

// histogram formats counts by a small integer: "1: 950, 2: 50".
func histogram(m map[int]int) string {
	var keys []int
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d: %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// countsByName formats counts by name: "m1 500, m2 500".
func countsByName(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		name := k
		if name == "" {
			name = "?"
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
