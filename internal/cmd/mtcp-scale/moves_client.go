package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/migratory/mtcp"
)

// MovesArgs asks for one echo stream on a pool session that the client
// moves from member to member while it flows.
type MovesArgs struct {
	Addr     string // a member's client address
	Moves    int
	Gap      time.Duration // streaming between two moves
	Rate     int64         // the stream's pace in bytes per second; 0: as fast as it goes
	Deadline time.Time
}

// MoveRec is one Migrate call, in time since the stream began.
type MoveRec struct {
	From, To time.Duration
	Err      string // "" when the move succeeded
}

// MovesReply is what the client end of the moves scenario saw.
type MovesReply struct {
	Session   string
	Times     []time.Duration // one per read that returned bytes, since the stream began
	Moves     []MoveRec
	RunFor    time.Duration // from the first move to the last one's end
	Wrote     int64
	Sent      []byte // SHA-256 of the input
	StreamErr string // why the stream failed, if it did
	Integrity bool   // the stream failed because bytes arrived other than sent
}

// Moves runs the client end of the moves scenario in the agent's process.
func (a *Agent) Moves(args MovesArgs, r *MovesReply) error {
	ctx, cancel := context.WithDeadline(context.Background(), args.Deadline)
	defer cancel()
	var err error
	*r, err = movesClient(ctx, args)
	return err
}

// movesClient dials the pool, streams an echo and moves the session to the
// next member (by name) every args.Gap, args.Moves times.
func movesClient(ctx context.Context, args MovesArgs) (MovesReply, error) {
	var r MovesReply
	c, _, err := dialCounted(ctx, args.Addr, obeyPolicy{})
	if err != nil {
		return r, err
	}
	defer c.Close()
	r.Session = c.SessionID()
	for len(c.Members()) < 3 {
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return r, fmt.Errorf("the client did not learn the pool: %w", err)
		}
	}
	s := startEchoStream(c, 1, deadlineOf(ctx), args.Rate)
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		return r, err
	}
	began := time.Now()
	for i := 0; i < args.Moves; i++ {
		select {
		case <-s.fail:
		case <-ctx.Done():
		case <-time.After(args.Gap):
		}
		if ctx.Err() != nil || isClosed(s.fail) {
			break
		}
		target := memberAfter(c.Members(), c.MemberName())
		from := time.Since(s.base)
		mctx, cancel := context.WithTimeout(ctx, moveTimeout)
		err := c.Migrate(mctx, target)
		cancel()
		rec := MoveRec{From: from, To: time.Since(s.base)}
		if err != nil {
			rec.Err = err.Error()
		}
		r.Moves = append(r.Moves, rec)
		if ctx.Err() != nil {
			break
		}
		// A failed move leaves the session reconnecting where it was: the
		// next move waits for it to be attached again.
		for wait := time.Now().Add(moveTimeout); err != nil && !c.Status().Attached && time.Now().Before(wait); {
			time.Sleep(time.Millisecond)
		}
	}
	r.RunFor = time.Since(began)
	wrote, serr := s.finish()
	r.Times, r.Wrote, r.Sent = s.times, wrote, s.chk.sent.Sum(nil)
	if serr != nil {
		r.StreamErr, r.Integrity = serr.Error(), errors.Is(serr, errIntegrity)
	}
	return r, nil
}

// memberAfter returns the client address of the member after name, the
// members taken in the order of their names.
func memberAfter(members []mtcp.Member, name string) string {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b mtcp.Member) int { return strings.Compare(a.Name, b.Name) })
	for i, m := range ms {
		if m.Name == name {
			return ms[(i+1)%len(ms)].Addr
		}
	}
	return ms[0].Addr
}
