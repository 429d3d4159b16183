package mtcp

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// resumeMetrics records the pause of the last resume.
type resumeMetrics struct {
	noMetrics
	resumed atomic.Int64
}

func (m *resumeMetrics) Resumed(pause time.Duration) { m.resumed.Store(int64(pause)) }

// TestResumePauseCountsFromLinkLossDuringMove: the link breaks while the
// move dials (the session stands still from then on), then the dial fails
// and the session reconnects to its member. Metrics.Resumed counts the
// pause from the link's loss, as for any other reconnect, not from when
// the failed move handed over to the reconnect.
func TestResumePauseCountsFromLinkLossDuringMove(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	target := ap.addr("m1")
	gate := newDialGate(target, true)
	metrics := &resumeMetrics{}
	d := &Dialer{Logger: testLogger(t), Metrics: metrics, DialFunc: gate.dial}
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 3)
	require.NoError(t, es.round(1024, 10*time.Second))
	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-gate.dialing
	l := linkOf(c)
	closed := time.Now()
	_ = l.nc.Close()
	require.Eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.link == nil }, 5*time.Second, time.Millisecond)
	const held = 300 * time.Millisecond
	time.Sleep(held)
	close(gate.release)
	require.ErrorIs(t, <-moved, ErrMoveFailed)
	require.Eventually(t, func() bool { return metrics.resumed.Load() != 0 }, 10*time.Second, time.Millisecond)
	stood := time.Since(closed)
	pause := time.Duration(metrics.resumed.Load())
	t.Logf("stood still about %v; Metrics.Resumed pause %v", stood, pause)
	require.GreaterOrEqual(t, pause, held, "the pause counts from the link's loss")
	require.LessOrEqual(t, pause, stood)
	require.NoError(t, es.round(1024, 10*time.Second))
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0")
}

// TestReconnectAfterLateFailedMoveTriesItsMember: the link breaks as a move
// begins, and the move's dial to a target that never answers takes the
// whole handshake timeout, longer than the Dialer's resume timeout. The
// reconnect that follows counts from the link's loss, so its time is spent
// before it starts; it still tries the session's member once, which is up,
// and the session lives on.
func TestReconnectAfterLateFailedMoveTriesItsMember(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	target := ap.addr("m1")
	dialing := make(chan struct{})
	var once atomic.Bool
	var ownDials atomic.Int32
	d := &Dialer{Logger: testLogger(t), HandshakeTimeout: 2 * time.Second, ResumeTimeout: 1500 * time.Millisecond,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target && once.CompareAndSwap(false, true) {
				close(dialing)
				<-ctx.Done() // a target that never answers
				return nil, ctx.Err()
			}
			if address == ap.addr("m0") {
				ownDials.Add(1)
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 3)
	require.NoError(t, es.round(1024, 10*time.Second))
	before := ownDials.Load()

	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-dialing
	_ = linkOf(c).nc.Close()
	require.ErrorIs(t, <-moved, ErrMoveFailed)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.link != nil || c.ended
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Err(), "the session was lost though its member was up")
	require.Positive(t, ownDials.Load()-before, "the member was dialled")
	require.NoError(t, es.round(1024, 10*time.Second))
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0")
}

// TestResumeTimeoutBoundsAMoveWhoseLinkBroke: the link breaks while a move
// dials a target that never answers, and the session's member does not
// answer either. The move, now the session's resume, ends at the resume
// timeout rather than its own handshake timeout, and the one attempt at
// the member that follows is bounded by the resume timeout too: the
// session is lost within about twice the resume timeout, not after the
// move's whole handshake timeout.
func TestResumeTimeoutBoundsAMoveWhoseLinkBroke(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	target, own := ap.addr("m1"), ap.addr("m0")
	dialing := make(chan struct{})
	var once, blockOwn atomic.Bool
	const rt, hs = 300 * time.Millisecond, 3 * time.Second
	d := &Dialer{Logger: testLogger(t), HandshakeTimeout: hs, ResumeTimeout: rt,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target && once.CompareAndSwap(false, true) {
				close(dialing)
			}
			if address == target || address == own && blockOwn.Load() {
				<-ctx.Done() // never answers
				return nil, ctx.Err()
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	c := ap.dial(t, d, "m0")
	defer c.Close()
	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-dialing
	blockOwn.Store(true)
	broke := time.Now()
	_ = linkOf(c).nc.Close()
	require.ErrorIs(t, <-moved, ErrMoveFailed)
	require.Eventually(t, func() bool { return c.Err() != nil }, 20*time.Second, time.Millisecond)
	lost := time.Since(broke)
	t.Logf("resume timeout %v: the session was lost %v after its link broke: %v", rt, lost, c.Err())
	require.ErrorIs(t, c.Err(), ErrResumeTimeout)
	require.Less(t, lost, 2*rt+time.Second, "the move outlived the resume timeout")
}

// dropAfterProof passes a link's bytes until the client wrote its PROOF
// (its second write); then it swallows everything the target sends, so the
// RESUMED never arrives.
type dropAfterProof struct {
	net.Conn
	writes atomic.Int32
}

func (d *dropAfterProof) Write(p []byte) (int, error) {
	d.writes.Add(1)
	return d.Conn.Write(p)
}

func (d *dropAfterProof) Read(p []byte) (int, error) {
	if d.writes.Load() < 2 {
		return d.Conn.Read(p)
	}
	for {
		if _, err := d.Conn.Read(p); err != nil {
			return 0, err
		}
	}
}

// TestLateReconnectFollowsRedirect: the link breaks as a move begins, the
// move's dial takes half the resume timeout, and the target then takes the
// session over but its RESUMED is lost, so the move fails after the
// handover, at the resume timeout. The reconnect that follows is past it; its
// first attempt goes to the old member, which redirects it to the member
// that has the session now. That redirect is followed, and the session
// lives on there.
func TestLateReconnectFollowsRedirect(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	target := ap.addr("m1")
	var once atomic.Bool
	var cp atomic.Pointer[Conn]
	const rt, hs = 500 * time.Millisecond, 3 * time.Second
	d := &Dialer{Logger: testLogger(t), HandshakeTimeout: hs, ResumeTimeout: rt,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target && once.CompareAndSwap(false, true) {
				_ = linkOf(cp.Load()).nc.Close() // the link breaks as the move begins
				time.Sleep(rt / 2)
				nc, err := (&net.Dialer{}).DialContext(ctx, network, address)
				if err != nil {
					return nil, err
				}
				return &dropAfterProof{Conn: nc}, nil
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	c := ap.dial(t, d, "m0")
	cp.Store(c)
	defer c.Close() // if the test fails
	es := newEchoSession(c, 27)
	require.NoError(t, es.round(1024, 10*time.Second))
	err := c.Migrate(context.Background(), target)
	t.Logf("Migrate: %v", err)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.link != nil || c.ended
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Err(), "the session was lost though m1 holds it")
	require.Equal(t, "m1", c.MemberName())
	require.NoError(t, es.round(1024, 10*time.Second))
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0", "m1")
}

// TestMoveLinkLostAsMoveEnds: the link a move attached at the target
// breaks before the move has ended. The client's link loss leaves the
// session to a move under way, so the move, as it ends, must see that the
// session has no link and resume it; else the session would stand without
// a link and without a reconnect until the application gave up.
func TestMoveLinkLostAsMoveEnds(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	c := ap.dial(t, nil, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 31)
	require.NoError(t, es.round(1024, 10*time.Second))
	srv := ap.serverConn(c.SessionID())

	hook := func(mc *Conn) {
		if mc != c {
			return
		}
		_ = linkOf(c).nc.Close()
		// Until the client has seen the loss: its link's reader fails.
		for giveUp := time.Now().Add(5 * time.Second); linkOf(c) != nil && time.Now().Before(giveUp); {
			time.Sleep(100 * time.Microsecond)
		}
	}
	testHookMoveAttached.Store(&hook)
	defer testHookMoveAttached.Store(nil)
	require.NoError(t, c.Migrate(context.Background(), ap.addr("m1")))
	testHookMoveAttached.Store(nil)
	require.Eventually(t, func() bool { return linkOf(c) != nil }, 10*time.Second, time.Millisecond,
		"the session resumes on a new link")
	waitNewServerEnd(t, ap, c, srv)
	require.NoError(t, es.round(1024, 10*time.Second))
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0", "m1")
}
