package main

import (
	"context"
	"fmt"
	"time"
)

func openDeadline(o *options) time.Duration {
	return time.Duration(o.count*len(allKinds)) * 90 * time.Second
}

// runOpen measures how many sessions of each kind open per second with
// many concurrent dialers: from the first dial until the client has every
// session and the server has accepted every one.
func runOpen(ctx context.Context, o *options) ([]*table, error) {
	n := o.openSessions
	cl, where, err := startClientsFor(ctx, o, 2*n+512)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	t := &cmpTable{title: fmt.Sprintf("opening %d sessions with %d dialers (%s)", n, o.dialers, where), kinds: o.kindsOf(allKinds)}
	t.notes = append(t.notes, "a session counts as open once its client has it and its server accepted it (rate: sessions opened over the time from the first dial to the last accept); time to open one: the client's dial, as its dialer saw it; yamux session: TCP connection, session and one stream; yamux stream: a stream in one session opened beforehand")
	for range o.count {
		for _, kind := range t.kinds {
			rep, rate, err := openOnce(ctx, o, cl, kind, n)
			if err != nil {
				return []*table{t.table()}, err
			}
			t.add(fmt.Sprintf("sessions opened per second, %d dialers", o.dialers), kind, rate, fmtRate)
			t.add("time to open one, p50", kind, float64(rep.P50.Nanoseconds())/1e3, fmtMicros)
			t.add("time to open one, p99", kind, float64(rep.P99.Nanoseconds())/1e3, fmtMicros)
			t.add("sessions that failed to open", kind, float64(rep.Failed), fmtCount)
			for _, e := range rep.Errors {
				t.notes = append(t.notes, fmt.Sprintf("%s failed to open: %s", kindNames[kind], e))
			}
		}
	}
	return []*table{t.table()}, nil
}

func openOnce(ctx context.Context, o *options, cl *clients, kind string, n int) (OpenReply, float64, error) {
	var rep OpenReply
	srv, err := startServer(kind, nil)
	if err != nil {
		return rep, 0, err
	}
	base := readStats(false)
	defer func() {
		cl.closeAll(o.settle)
		srv.close()
		settleGoroutines(base.Goroutines+16, o.settle)
	}()
	if kind == kindYamuxStream { // the session is not part of the figure
		if err := cl.call(ctx, "Open", OpenArgs{Kind: kind, Addr: srv.addr(), N: 1, Dialers: 1, Deadline: deadlineOf(ctx)}, &OpenReply{}); err != nil {
			return rep, 0, err
		}
		if err := srv.waitAccepted(ctx, 1); err != nil {
			return rep, 0, err
		}
	}
	already := int(srv.accepted.Load())
	start := time.Now()
	args := OpenArgs{Kind: kind, Addr: srv.addr(), N: n, Dialers: o.dialers, Deadline: deadlineOf(ctx)}
	if err := cl.call(ctx, "Open", args, &rep); err != nil {
		return rep, 0, fmt.Errorf("opening %d %s sessions: %w", n, kind, err)
	}
	if err := srv.waitAccepted(ctx, already+rep.Opened); err != nil {
		return rep, 0, err
	}
	return rep, float64(rep.Opened) / time.Since(start).Seconds(), nil
}

// deadlineOf is ctx's deadline (a minute from now if it has none).
func deadlineOf(ctx context.Context) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(time.Minute)
}
