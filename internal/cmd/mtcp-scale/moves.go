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
// on a raw TCP echo stream.
func runMoves(ctx context.Context, o *options) ([]*table, error) {
	app := newEchoApp()
	p, err := startPool(ctx, o, 3, nil, app.serve)
	if err != nil {
		return nil, err
	}
	defer p.close()
	c, _, err := dialCounted(ctx, p.members[0].Addr().String(), obeyPolicy{})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for len(c.Members()) < 3 {
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, fmt.Errorf("the client did not learn the pool: %w", err)
		}
	}
	s := startEchoStream(c, 1, deadlineOf(ctx))
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		return nil, err
	}
	type moveRec struct {
		from, to time.Duration
		err      error
	}
	var recs []moveRec
	began := time.Now()
	for i := 0; i < o.moves; i++ {
		select {
		case <-s.fail:
		case <-ctx.Done():
		case <-time.After(o.moveGap):
		}
		if ctx.Err() != nil || isClosed(s.fail) {
			break
		}
		target := nextMember(p, c.MemberName())
		from := time.Since(s.base)
		mctx, cancel := context.WithTimeout(ctx, moveTimeout)
		err := c.Migrate(mctx, target)
		cancel()
		recs = append(recs, moveRec{from, time.Since(s.base), err})
		if ctx.Err() != nil {
			break
		}
		// A failed move leaves the session reconnecting where it was: the
		// next move waits for it to be attached again.
		for wait := time.Now().Add(moveTimeout); err != nil && !c.Status().Attached && time.Now().Before(wait); {
			time.Sleep(time.Millisecond)
		}
	}
	runFor := time.Since(began)
	wrote, serr := s.finish()
	streamed := float64(wrote) / runFor.Seconds()

	var stalls, calls []time.Duration
	var windows [][2]time.Duration
	failures := map[string]int{}
	for _, r := range recs {
		calls = append(calls, r.to-r.from)
		windows = append(windows, [2]time.Duration{r.from, r.to})
		if r.err != nil {
			failures[r.err.Error()]++
			continue
		}
		stalls = append(stalls, stallOver(s.times, r.from, r.to))
	}
	between := gapsOutside(s.times, windows)

	// The raw TCP reference: the same echo stream, no moves.
	rawGaps, rawRate, rerr := rawEchoStream(ctx, min(runFor, 3*time.Second))

	t := &table{title: fmt.Sprintf("%d live moves in a 3-member pool while one echo stream flows", len(recs)),
		header: []string{"reader's wait for data", "mtcp, across a move", "mtcp, between moves", "raw TCP echo stream"}}
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50", 50}, {"p99", 99}, {"max", 100}} {
		t.add(q.name, durOf(stalls, q.p), durOf(between, q.p), durOf(rawGaps, q.p))
	}
	t.add("stream rate", fmtMBs(streamed), "", fmtMBs(rawRate))
	failed := len(recs) - len(stalls)
	t.note("moves: %d attempted, %d failed; each a client Migrate to the next member, %v of streaming apart (after a failed one, once the session is attached again)", len(recs), failed, o.moveGap)
	for _, e := range topErrors(failures, 5) {
		t.note("failed move: %s", e)
	}
	t.note("Migrate call: p50 %s, p99 %s, max %s", durOf(calls, 50), durOf(calls, 99), durOf(calls, 100))
	t.note("across a move: the longest gap between two reads of the echo that overlaps the Migrate call; between moves: every gap that overlaps none")
	t.note("the server application echoes, checkpointing (bytes consumed, SHA-256 state) after every write; the stream carries 64 KiB writes; the client's policy moves only when asked")
	p.noteStuck(t)
	var errs []error
	if serr != nil {
		errs = append(errs, serr)
	} else if d := app.digest(c.SessionID()); !bytes.Equal(d, s.chk.sent.Sum(nil)) {
		errs = append(errs, fmt.Errorf("%w: the application's digest of its input differs from the client's", errIntegrity))
	} else {
		t.note("verified: %d bytes each way; the SHA-256 of the input, of the echo and the application's own agree", wrote)
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

// nextMember returns the client address of the member after name.
func nextMember(p *testPool, name string) string {
	for i, ln := range p.members {
		if ln.NodeName() == name {
			return p.members[(i+1)%len(p.members)].Addr().String()
		}
	}
	return p.members[0].Addr().String()
}

// rawEchoStream runs the echo stream over raw TCP for d and returns the
// gaps between reads and the rate.
func rawEchoStream(ctx context.Context, d time.Duration) ([]time.Duration, float64, error) {
	srv, err := startServer(kindTCP, echoServer)
	if err != nil {
		return nil, 0, err
	}
	defer srv.close()
	c, err := newOpener(kindTCP, srv.addr()).open(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	s := startEchoStream(c, 1, deadlineOf(ctx))
	start := time.Now()
	_ = sleepCtx(ctx, d)
	took := time.Since(start)
	wrote, err := s.finish()
	return gapsOutside(s.times, nil), float64(wrote) / took.Seconds(), err
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
