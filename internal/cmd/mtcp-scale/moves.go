package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/migratory/mtcp/internal/faultproxy"
)

func movesDeadline(o *options) time.Duration {
	return 2*time.Minute + time.Duration(o.moves)*(o.moveGap+2*time.Second)
}

// moveTimeout bounds one Migrate call.
const moveTimeout = 10 * time.Second

// runMoves streams an echo through a 3-member pool whose application
// checkpoints after every write, while the client moves the session from
// member to member; it measures how long the reader waits for data across
// each move, and compares with the gaps between reads away from moves and
// on a raw TCP echo stream. The client end runs in this process, or in a
// child process with -clients child.
func runMoves(ctx context.Context, o *options) ([]*table, error) {
	app := newEchoApp()
	paths, err := newClientPaths(3, o.moveLatency)
	if err != nil {
		return nil, err
	}
	defer paths.close()
	p, err := startPool(ctx, o, 3, paths.tweak, app.serve)
	if err != nil {
		return nil, err
	}
	defer p.close()
	paths.attach(p.members)
	args := MovesArgs{Addr: paths.addr(p.members, 0), Moves: o.moves, Gap: o.moveGap, Rate: o.moveRate, Deadline: deadlineOf(ctx)}
	where := "the client end in this process"
	var r MovesReply
	if o.clients == "child" {
		// The client end apart from the servers: its goroutines do not
		// wait behind theirs in one scheduler (the cores stay shared).
		cl, err := startClients(ctx, true)
		if err != nil {
			return nil, err
		}
		defer cl.close()
		where = "the client end in a child process"
		if err := cl.call(ctx, "Moves", args, &r); err != nil {
			return nil, err
		}
	} else if r, err = movesClient(ctx, args); err != nil {
		return nil, err
	}
	streamed := float64(r.Wrote) / r.RunFor.Seconds()

	var stalls, calls []time.Duration
	var windows [][2]time.Duration
	failures := map[string]int{}
	for _, m := range r.Moves {
		calls = append(calls, m.To-m.From)
		windows = append(windows, [2]time.Duration{m.From, m.To})
		if m.Err != "" {
			failures[m.Err]++
			continue
		}
		stalls = append(stalls, stallOver(r.Times, m.From, m.To))
	}
	between := gapsOutside(r.Times, windows)

	// The raw TCP reference: the same echo stream, no moves.
	rawGaps, rawRate, floor, rerr := rawEchoStream(ctx, min(r.RunFor, 3*time.Second), o.moveRate, o.moveGap, o.moveLatency)

	t := &table{title: fmt.Sprintf("%d live moves in a 3-member pool while one echo stream flows", len(r.Moves)),
		header: []string{"reader's wait for data", "mtcp, across a move", "mtcp, between moves", "raw TCP echo stream", "raw TCP: dial + one round trip"}}
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50", 50}, {"p99", 99}, {"max", 100}} {
		t.add(q.name, durOf(stalls, q.p), durOf(between, q.p), durOf(rawGaps, q.p), durOf(floor, q.p))
	}
	t.add("stream rate", fmtMBs(streamed), "", fmtMBs(rawRate), "")
	failed := len(r.Moves) - len(stalls)
	t.note("moves: %d attempted, %d failed; each a client Migrate to the next member, %v of streaming apart (after a failed one, once the session is attached again)", len(r.Moves), failed, o.moveGap)
	for _, e := range topErrors(failures, 5) {
		t.note("failed move: %s", e)
	}
	t.note("Migrate call: p50 %s, p99 %s, max %s", durOf(calls, 50), durOf(calls, 99), durOf(calls, 100))
	t.note("across a move: the longest gap between two reads of the echo that overlaps the Migrate call; between moves: every gap that overlaps none")
	t.note("dial + one round trip: a new raw TCP connection to the echo server and one 64-byte echo on it, every %v while the raw stream flows (%d of them): the least any move costs here, since a move dials its target and waits for its answer", o.moveGap, len(floor))
	if o.moveLatency > 0 {
		t.note("clients reach every member, and the raw TCP echo server, through a proxy that delays each byte %v each way (-move-latency); members talk to each other directly; a dial through the proxy completes at once, so the connection's own round trip is not counted", o.moveLatency)
	}
	t.note("the server application echoes, checkpointing (bytes consumed, SHA-256 state) after every write; the stream carries 64 KiB writes (%s); the client's policy moves only when asked; %s (-clients child puts it in a child process)", paceOf(o.moveRate), where)
	p.noteStuck(t)
	var errs []error
	switch {
	case r.Integrity:
		errs = append(errs, fmt.Errorf("%w: %s", errIntegrity, r.StreamErr))
	case r.StreamErr != "":
		errs = append(errs, errors.New(r.StreamErr))
	case !bytes.Equal(app.digest(r.Session), r.Sent):
		errs = append(errs, fmt.Errorf("%w: the application's digest of its input differs from the client's", errIntegrity))
	default:
		t.note("verified: %d bytes each way; the SHA-256 of the input, of the echo and the application's own agree", r.Wrote)
	}
	if n, errs := app.errors(); n > 0 {
		t.note("server application errors: %d, commonest: %s", n, errs)
	}
	if rerr != nil {
		errs = append(errs, fmt.Errorf("raw TCP reference: %w", rerr))
	}
	return []*table{t}, errors.Join(errs...)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// rawEchoStream runs the echo stream over raw TCP for d (at rate bytes per
// second; 0: as fast as it goes; through a path that delays each way by
// latency, if not 0) and returns the gaps between reads, the rate, and the
// reconnect floor measured meanwhile every gap.
func rawEchoStream(ctx context.Context, d time.Duration, rate int64, gap, latency time.Duration) (gaps []time.Duration, streamed float64, floor []time.Duration, err error) {
	srv, err := startServer(kindTCP, echoServer)
	if err != nil {
		return nil, 0, nil, err
	}
	defer srv.close()
	addr := srv.addr()
	if latency > 0 {
		px, err := faultproxy.New(addr)
		if err != nil {
			return nil, 0, nil, err
		}
		defer px.Close()
		px.SetDelay(latency)
		addr = px.Addr()
	}
	c, err := newOpener(kindTCP, addr).open(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	defer c.Close()
	s := startEchoStream(c, 1, deadlineOf(ctx), rate)
	stop := make(chan struct{})
	floorDone := make(chan error, 1)
	go func() {
		var ferr error
		floor, ferr = reconnectFloor(ctx, addr, gap, stop)
		floorDone <- ferr
	}()
	start := time.Now()
	_ = sleepCtx(ctx, d)
	took := time.Since(start)
	close(stop)
	ferr := <-floorDone
	wrote, err := s.finish()
	if ferr != nil {
		err = errors.Join(err, fmt.Errorf("reconnect floor: %w", ferr))
	}
	return gapsOutside(s.times, nil), float64(wrote) / took.Seconds(), floor, err
}

// paceOf describes the stream's pace.
func paceOf(rate int64) string {
	if rate <= 0 {
		return "as fast as it goes: -move-rate paces it"
	}
	return fmt.Sprintf("paced at %s each way by -move-rate", fmtMBs(float64(rate)))
}

// durOf formats the p-th percentile of ds ("–" when empty).
func durOf(ds []time.Duration, p float64) string {
	if len(ds) == 0 {
		return "–"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmtDur(percentile(s, p))
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/1e3)
}

// topErrors returns the commonest kinds of message (numbers and addresses
// aside), each with its count and one example.
func topErrors(m map[string]int, n int) []string {
	type group struct {
		example string
		n       int
	}
	groups := map[string]*group{}
	for msg, k := range m {
		key := digits.ReplaceAllString(msg, "#")
		g := groups[key]
		if g == nil {
			g = &group{example: msg}
			groups[key] = g
		}
		g.n += k
	}
	all := make([]*group, 0, len(groups))
	for _, g := range groups {
		all = append(all, g)
	}
	sort.Slice(all, func(i, j int) bool {
		return all[i].n > all[j].n || (all[i].n == all[j].n && all[i].example < all[j].example)
	})
	var out []string
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, fmt.Sprintf("%d× like: %s", all[i].n, all[i].example))
	}
	return out
}

var digits = regexp.MustCompile(`[0-9a-f]{16,}|[0-9]+`)
