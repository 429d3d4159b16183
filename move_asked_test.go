package mtcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMoveAskedDuringOwnFailedMove: the server asks the session to move
// (MOVE) while a move of the client's own dials; that move fails before it
// leaves the link, so the session is still where the server asked it to
// leave, on the same link, where the server does not ask again. The
// client moves as asked once its own move has failed.
func TestMoveAskedDuringOwnFailedMove(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	target := ap.addr("m1")
	gate := newDialGate(target, true)
	d := &Dialer{Logger: testLogger(t), DialFunc: gate.dial}
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 3)
	require.NoError(t, es.round(1024, 10*time.Second))

	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-gate.dialing
	srv := ap.serverConn(c.SessionID())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	srvMoved := make(chan error, 1)
	go func() { srvMoved <- srv.Migrate(ctx, target) }()
	require.Eventually(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.server.moveSent
	}, 5*time.Second, time.Millisecond, "the server sends MOVE on the link the client kept")
	time.Sleep(50 * time.Millisecond) // for the MOVE to arrive
	close(gate.release)
	require.ErrorIs(t, <-moved, ErrMoveFailed, "the client's own move fails")
	require.NoError(t, <-srvMoved, "the session leaves as the server asked")
	require.Eventually(t, func() bool { return c.MemberName() == "m1" }, 5*time.Second, time.Millisecond)
	waitNewServerEnd(t, ap, c, srv)
	require.NoError(t, es.round(1024, 10*time.Second))
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0", "m1")
}

// waitNewServerEnd waits until the pool's applications serve c's session
// on another server end than old: when a move returns, the application on
// the member the session left may still be the newest one known.
func waitNewServerEnd(t *testing.T, ap *appPool, c *Conn, old *Conn) {
	t.Helper()
	require.Eventually(t, func() bool { return ap.serverConn(c.SessionID()) != old }, 5*time.Second, time.Millisecond,
		"the session's application runs on the member it moved to")
}

// failFirstDialTo returns a Dialer whose first dial to target fails at
// once (failed is closed then); the others go through.
func failFirstDialTo(t *testing.T, target string) (*Dialer, <-chan struct{}) {
	g := newDialGate(target, true)
	close(g.release)
	return &Dialer{Logger: testLogger(t), DialFunc: g.dial}, g.dialing
}

// TestServerMoveObeyedFailsBeforeChallenge: the server asks the session
// to move (a settled move: the echo sits at a checkpoint boundary, so the
// server holds its application once the MOVE is out). The client obeys,
// but its dial to the target fails at once, before any CHALLENGE, on the
// link it kept. It then leaves that link and resumes at its member, which
// lets its application go on and asks again: the stream goes on at once,
// and the second move succeeds. (A client that stayed on the kept link
// would leave the application held until the member's settle timer, and
// never be asked again.)
func TestServerMoveObeyedFailsBeforeChallenge(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	target := ap.addr("m1")
	d, failed := failFirstDialTo(t, target)
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 5)
	require.NoError(t, es.round(1024, 10*time.Second))

	srv := ap.serverConn(c.SessionID())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	srvMoved := make(chan error, 1)
	go func() { srvMoved <- srv.Migrate(ctx, target) }()
	<-failed // the client obeyed the MOVE, and its dial failed

	echoStart := time.Now()
	require.NoError(t, es.round(1024, 10*time.Second))
	echoTook := time.Since(echoStart)
	t.Logf("the echo after the failed dial took %v (on %s)", echoTook, c.MemberName())
	require.Less(t, echoTook, time.Second, "the stream stood still after the client's move failed")
	require.NoError(t, <-srvMoved, "the member asks again, and the session moves")
	require.Eventually(t, func() bool { return c.MemberName() == "m1" }, 5*time.Second, time.Millisecond)
	waitNewServerEnd(t, ap, c, srv)
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0", "m1")
}

// TestDrainObeyedMoveFailsBeforeChallenge: the same through Drain. The
// draining member asks the session to move; the client's dial to the
// target fails once, before any CHALLENGE. The session resumes at its
// member, which asks again at once: the drain does not wait for its retry
// after the move's time.
func TestDrainObeyedMoveFailsBeforeChallenge(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	d, failed := failFirstDialTo(t, ap.addr("m1"))
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 7)
	require.NoError(t, es.round(1024, 10*time.Second))
	srv := ap.serverConn(c.SessionID())

	start := time.Now()
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		drained <- ap.member("m0").Drain(ctx)
	}()
	<-failed
	require.NoError(t, <-drained)
	took := time.Since(start)
	t.Logf("the drain took %v; the session is on %s", took, c.MemberName())
	require.Less(t, took, 2*time.Second, "the drain waited for its retry")
	waitNewServerEnd(t, ap, c, srv)
	require.NoError(t, es.round(1024, 10*time.Second))
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0", "m1")
}

// declinePolicy never obeys the server's MOVE and never moves on its own.
type declinePolicy struct{ asked atomic.Int32 }

func (p *declinePolicy) MoveRequested(string, MoveReason) string { p.asked.Add(1); return "" }
func (p *declinePolicy) Check(PolicyStats) string                { return "" }

// elsewherePolicy answers every MOVE with an address the pool does not
// have, so the obeyed move fails before it begins.
type elsewherePolicy struct{ asked atomic.Int32 }

func (p *elsewherePolicy) MoveRequested(string, MoveReason) string {
	p.asked.Add(1)
	return "127.0.0.1:1"
}
func (p *elsewherePolicy) Check(PolicyStats) string { return "" }

// countMetrics counts resumes.
type countMetrics struct {
	noMetrics
	resumed atomic.Int32
}

func (m *countMetrics) Resumed(time.Duration) { m.resumed.Add(1) }

func linkOf(c *Conn) *link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link
}

// TestDeclinedMoveThenOwnFailedMoveKeepsLink: the server asks the session
// to move and the client's policy declines. Later a move of the client's
// own fails before any CHALLENGE. Nothing asked for that move, so the
// session stays on its link, untouched: no resume, and no new request of
// the member to hold its application for.
func TestDeclinedMoveThenOwnFailedMoveKeepsLink(t *testing.T) {
	const hold = 1500 * time.Millisecond
	ap := startAppPool(t, 2, func(c *Config) { c.Replicas = 1; c.HandshakeTimeout = hold }, appOptions{})
	defer ap.close()
	target := ap.addr("m1")
	d, failed := failFirstDialTo(t, target)
	pol := &declinePolicy{}
	metrics := &countMetrics{}
	d.Policy, d.Metrics = pol, metrics
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 5)
	echo := func() time.Duration {
		t.Helper()
		start := time.Now()
		require.NoError(t, es.round(1024, 30*time.Second))
		return time.Since(start)
	}
	echo()

	srv := ap.serverConn(c.SessionID())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, srv.Migrate(ctx, target), context.DeadlineExceeded)
	require.Eventually(t, func() bool { return pol.asked.Load() == 1 }, 5*time.Second, time.Millisecond)
	time.Sleep(hold + 300*time.Millisecond) // the member lets its application go on
	echo()

	l := linkOf(c)
	require.ErrorIs(t, c.Migrate(context.Background(), target), ErrMoveFailed)
	<-failed
	took := echo()
	t.Logf("the echo after the failed move took %v", took)
	require.Less(t, took, time.Second, "the stream stood still after a failed move nobody asked for")
	require.True(t, linkOf(c) == l, "the session left a healthy link")
	require.Zero(t, metrics.resumed.Load())
	require.EqualValues(t, 1, pol.asked.Load(), "the member was not asked to move the session again")
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0")
}

// TestObeyedMoveFailingAtOnceReleasesItsMember: the client's policy obeys
// the server's MOVE with a target the client cannot move to, so the move
// fails before it begins. The member holds its application for the move it
// asked for; the client leaves the link and resumes at its member, which
// lets the application go on (and asks again, a few times): the stream does
// not stand still for the member's settle timer.
func TestObeyedMoveFailingAtOnceReleasesItsMember(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	pol := &elsewherePolicy{}
	c := ap.dial(t, &Dialer{Logger: testLogger(t), Policy: pol}, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 11)
	require.NoError(t, es.round(1024, 10*time.Second))

	srv := ap.serverConn(c.SessionID())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	srvMoved := make(chan error, 1)
	go func() { srvMoved <- srv.Migrate(ctx, ap.addr("m1")) }()
	require.Eventually(t, func() bool { return pol.asked.Load() >= 1 }, 5*time.Second, time.Millisecond)
	start := time.Now()
	require.NoError(t, es.round(1024, 10*time.Second))
	took := time.Since(start)
	t.Logf("the echo after the obeyed move failed took %v; the policy was asked %d times", took, pol.asked.Load())
	require.Less(t, took, 2*time.Second, "the stream stood still for the member's settle timer")
	require.ErrorIs(t, <-srvMoved, context.DeadlineExceeded, "the session cannot move")
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0")
}

// TestAskedMoveFailingRepeatedly: the target refuses the first n dials.
// Each failed asked move resumes at the member, which asks again, a
// bounded number of times. The session keeps every byte either way.
func TestAskedMoveFailingRepeatedly(t *testing.T) {
	for _, n := range []int32{2, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ap := startReplicatedPair(t)
			defer ap.close()
			target := ap.addr("m1")
			var dials atomic.Int32
			metrics := &countMetrics{}
			d := &Dialer{Logger: testLogger(t), Metrics: metrics,
				DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
					if address == target && dials.Add(1) <= n {
						return nil, errors.New("target unreachable (test)")
					}
					return (&net.Dialer{}).DialContext(ctx, network, address)
				}}
			c := ap.dial(t, d, "m0")
			defer c.Close() // if the test fails
			es := newEchoSession(c, 9)
			require.NoError(t, es.round(1024, 10*time.Second))
			srv := ap.serverConn(c.SessionID())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := srv.Migrate(ctx, target)
			t.Logf("server Migrate: %v; target dials %d; resumes %d; on %s", err, dials.Load(), metrics.resumed.Load(), c.MemberName())
			if n < 3 {
				require.NoError(t, err)
				require.Eventually(t, func() bool { return c.MemberName() == "m1" }, 5*time.Second, time.Millisecond)
				waitNewServerEnd(t, ap, c, srv)
			}
			start := time.Now()
			require.NoError(t, es.round(1024, 10*time.Second))
			require.Less(t, time.Since(start), 2*time.Second, "the stream stood still")
			if n < 3 {
				ap.finishEcho(t, c, es.sent, es.recv, 0, "m0", "m1")
			} else {
				ap.finishEcho(t, c, es.sent, es.recv, 0, "m0")
			}
		})
	}
}

// hookHandler is a slog.Handler that calls hook on every record, before
// passing it on.
type hookHandler struct {
	slog.Handler
	hook func(slog.Record)
}

func (h hookHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h hookHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return hookHandler{Handler: h.Handler.WithAttrs(as), hook: h.hook}
}

func (h hookHandler) WithGroup(name string) slog.Handler {
	return hookHandler{Handler: h.Handler.WithGroup(name), hook: h.hook}
}

func (h hookHandler) Handle(ctx context.Context, r slog.Record) error {
	h.hook(r)
	if h.Handler.Enabled(ctx, r.Level) {
		return h.Handler.Handle(ctx, r)
	}
	return nil
}

// TestFailedAskedMoveReleasesAtOnce: the member asks the session to move
// and holds its application for it; the obeyed move fails before any
// CHALLENGE. The move itself releases the member as it ends: by the time
// anything else learns that it failed (here its log record; the MOVE's
// goroutine, or a move of the client's own that could begin then), the
// session has left the link the member asked on and is resuming there. No
// other move can begin on that link first and keep the member's
// application held for its settle timer.
func TestFailedAskedMoveReleasesAtOnce(t *testing.T) {
	const hold = 3 * time.Second
	ap := startAppPool(t, 2, func(c *Config) { c.Replicas = 1; c.HandshakeTimeout = hold }, appOptions{})
	defer ap.close()
	target := ap.addr("m1")
	var cp atomic.Pointer[Conn]
	var hooked, linkKept atomic.Bool
	base := slog.DiscardHandler
	if l := testLogger(t); l != nil {
		base = l.Handler()
	}
	d, failed := failFirstDialTo(t, target)
	d.Logger = slog.New(hookHandler{Handler: base, hook: func(r slog.Record) {
		if r.Message != "mtcp: move failed, staying" || !hooked.CompareAndSwap(false, true) {
			return
		}
		c := cp.Load()
		c.mu.Lock()
		linkKept.Store(c.link != nil)
		c.mu.Unlock()
	}})
	c := ap.dial(t, d, "m0")
	cp.Store(c)
	defer c.Close() // if the test fails
	es := newEchoSession(c, 21)
	require.NoError(t, es.round(1024, 10*time.Second))

	srv := ap.serverConn(c.SessionID())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srvMoved := make(chan error, 1)
	go func() { srvMoved <- srv.Migrate(ctx, target) }()
	<-failed
	require.Eventually(t, hooked.Load, 5*time.Second, time.Millisecond)
	require.False(t, linkKept.Load(), "the failed move kept the link the member asked on")
	require.NoError(t, <-srvMoved, "the member asks again, and the session moves")
	require.Eventually(t, func() bool { return c.MemberName() == "m1" }, 5*time.Second, time.Millisecond)
	waitNewServerEnd(t, ap, c, srv)
	require.NoError(t, es.round(1024, 10*time.Second))
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0", "m1")
}
