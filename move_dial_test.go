package mtcp

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pauseMetrics records the pause of the last move.
type pauseMetrics struct {
	noMetrics
	pause atomic.Int64
}

func (m *pauseMetrics) Moved(pause time.Duration) { m.pause.Store(int64(pause)) }

// TestMoveKeepsLinkWhileDialing: a client's move keeps the session's link
// while it dials the target and is challenged there; the stream stops only
// for the proof, the handover and the restore. Here the dial to the target
// waits for the test: meanwhile the echo goes on over the link the session
// has. (A move used to leave its link first: the echo waited for the dial.)
// The move's pause, as the client's Metrics see it, leaves out the dial.
func TestMoveKeepsLinkWhileDialing(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	const (
		piece = 4 << 10
		total = 8 * piece
	)
	target := ap.addr("m1")
	dialing, letDial := make(chan struct{}), make(chan struct{})
	metrics := &pauseMetrics{}
	d := &Dialer{Logger: testLogger(t), Metrics: metrics,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target {
				close(dialing)
				<-letDial
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	src := newPattern(total, 13)
	sent, got := sha256.New(), sha256.New()
	buf := make([]byte, piece)
	wrote := 0
	echo := func() {
		t.Helper()
		wrote += piece
		ap.writeEchoed(t, c, src, sent, piece, wrote)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.ReadFull(c, buf)
		require.NoError(t, err)
		got.Write(buf)
	}
	echo()

	old := ap.serverConn(c.SessionID())
	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-dialing
	for range 4 {
		echo() // on the link the session has, while the dial waits
	}
	require.Equal(t, "m0", c.MemberName())
	const held = 200 * time.Millisecond
	time.Sleep(held)
	close(letDial)
	require.NoError(t, <-moved)
	require.Equal(t, "m1", c.MemberName())
	waitNewServerEnd(t, ap, c, old)
	pause := time.Duration(metrics.pause.Load())
	t.Logf("the move's pause: %v (its dial waited %v and more)", pause, held)
	require.Less(t, pause, held, "the pause leaves out the dial")

	for wrote < total {
		echo()
	}
	ap.finishEcho(t, c, sent, got, 0, "m0", "m1")
}

// TestMoveLeavesLinkOnlyWhenResumable: while the client dials the target,
// its stream goes on, and its member may let it free its input beyond
// every checkpoint it knows (here the client writes four times its
// retention without reading, so the echo's output waits for the client's
// application and the member frees half the retention where it falls). A
// client that then left its link at the CHALLENGE would prove positions no
// checkpoint fits, and the move would be refused. It sends no PROOF, waits
// on the link for a mark it can resume from instead, which comes once its
// application reads again, and dials the target again; the move succeeds
// and every byte arrives, SHA-256 both ways.
func TestMoveLeavesLinkOnlyWhenResumable(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	w := startWaitingMove(t, ap)
	defer w.c.Close() // if the test fails
	// The move waits on the link; its application reads again a while later.
	time.Sleep(200 * time.Millisecond)
	check := w.startReading()
	require.NoError(t, <-w.moved, "the move waits for a checkpoint it can resume from")
	require.Equal(t, "m1", w.c.MemberName())
	require.EqualValues(t, 2, w.dials.Load(), "the client dials the target again once it can resume")
	check(t)
	require.Eventually(t, func() bool { return slices.Equal([]string{"m0", "m1"}, ap.servedBy(w.c.SessionID())) },
		5*time.Second, time.Millisecond, "served by m0, then m1")
}

// waitingMove is a move whose client could no longer resume when the
// target challenged it, waiting on its link for a checkpoint it can resume
// from: its application wrote four times its retention without reading
// while the dial to the target was held.
type waitingMove struct {
	c         *Conn
	moved     chan error // Migrate's answer
	sent, got hash.Hash
	total     int64
	wrote     chan error
	dials     atomic.Int32 // to the target
}

func startWaitingMove(t *testing.T, ap *appPool) *waitingMove {
	const retention = 64 << 10
	w := &waitingMove{moved: make(chan error, 1), wrote: make(chan error, 1),
		sent: sha256.New(), got: sha256.New(), total: 4 * retention}
	target := ap.addr("m1")
	dialing, letDial := make(chan struct{}), make(chan struct{})
	d := &Dialer{Logger: testLogger(t), Retention: retention, Window: 16 << 10,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target && w.dials.Add(1) == 1 {
				close(dialing)
				<-letDial
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	c := ap.dial(t, d, "m0")
	w.c = c
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	first := make([]byte, 1<<10)
	src := newPattern(w.total+int64(len(first)), 17)
	_, _ = io.ReadFull(src, first)
	w.sent.Write(first)
	_, err := c.Write(first)
	require.NoError(t, err)
	echo := make([]byte, len(first))
	_, err = io.ReadFull(c, echo)
	require.NoError(t, err)
	w.got.Write(echo)
	resumable := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.client.resumableLocked(c)
	}
	require.Eventually(t, resumable, 10*time.Second, time.Millisecond, "the client hears of a checkpoint")
	go func() { w.moved <- c.Migrate(context.Background(), target) }()
	<-dialing
	go func() {
		_, err := io.Copy(c, io.TeeReader(io.LimitReader(src, w.total), w.sent))
		w.wrote <- err
	}()
	require.Eventually(t, func() bool { return !resumable() }, 20*time.Second, time.Millisecond,
		"the member lets the client free its input beyond every checkpoint it knows")
	close(letDial)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.client.markCh != nil && c.link != nil
	}, 5*time.Second, time.Millisecond, "the move waits on the link for a mark")
	return w
}

// startReading has the application read the whole echo again; check
// waits for it and checks it against the input.
func (w *waitingMove) startReading() (check func(t *testing.T)) {
	read := make(chan error, 1)
	go func() {
		_, err := io.CopyN(w.got, w.c, w.total)
		read <- err
	}()
	return func(t *testing.T) {
		t.Helper()
		require.NoError(t, <-read)
		require.NoError(t, <-w.wrote)
		require.Equal(t, w.sent.Sum(nil), w.got.Sum(nil), "the echo is the input, byte for byte")
	}
}

// TestMoveWaitsPastTargetsProofWindow: a move that waits on its link for a
// checkpoint it can resume from longer than the target waits for a PROOF
// (a third of its handshake timeout) still moves: the client left the
// target's handshake at once, without a PROOF, and dials it again once it
// can resume. (A client that kept the target's handshake open while it
// waited would find it closed.)
func TestMoveWaitsPastTargetsProofWindow(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	w := startWaitingMove(t, ap)
	defer w.c.Close() // if the test fails
	window := ap.member("m1").cfg.HandshakeTimeout / 3
	time.Sleep(window + 500*time.Millisecond)
	check := w.startReading()
	require.NoError(t, <-w.moved)
	require.Equal(t, "m1", w.c.MemberName())
	check(t)
	require.Eventually(t, func() bool { return slices.Equal([]string{"m0", "m1"}, ap.servedBy(w.c.SessionID())) },
		5*time.Second, time.Millisecond, "served by m0, then m1")
}

// TestMoveLinkLostWhileWaiting: the link breaks while a move waits on it
// for a checkpoint it can resume from. The session must not stand still
// until the move's time runs out: the move goes on at once as the
// session's resume (here it cannot restore the session at the target, so
// the session resumes at its member), and every byte arrives.
func TestMoveLinkLostWhileWaiting(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	w := startWaitingMove(t, ap)
	defer w.c.Close() // if the test fails
	c := w.c
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	lost := time.Now()
	_ = l.nc.Close()
	check := w.startReading()
	var err error
	select {
	case err = <-w.moved:
	case <-time.After(20 * time.Second):
		t.Fatal("Migrate did not return")
	}
	t.Logf("move: %v after %v", err, time.Since(lost))
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.link != nil
	}, 20*time.Second, time.Millisecond)
	stood := time.Since(lost)
	t.Logf("attached again after %v, on %s", stood, c.MemberName())
	require.Less(t, stood, 2*time.Second, "the session waited out the move's time")
	check(t)
}

// TestMoveAskedDuringOwnFailedMove: the server asks the session to move
// (MOVE) while a move of the client's own dials; that move fails before it
// leaves the link, so the session is still where the server asked it to
// leave, on the same link, where the server does not ask again. The
// client moves as asked once its own move has failed.
func TestMoveAskedDuringOwnFailedMove(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	target := ap.addr("m1")
	dialing, letDial := make(chan struct{}), make(chan struct{})
	var failed atomic.Bool
	d := &Dialer{Logger: testLogger(t),
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target && failed.CompareAndSwap(false, true) {
				close(dialing)
				<-letDial
				return nil, errors.New("target unreachable (test)")
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	src := newPattern(1<<20, 3)
	sent, got := sha256.New(), sha256.New()
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	buf := make([]byte, 1024)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)

	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-dialing
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
	close(letDial)
	require.ErrorIs(t, <-moved, ErrMoveFailed, "the client's own move fails")
	require.NoError(t, <-srvMoved, "the session leaves as the server asked")
	require.Eventually(t, func() bool { return c.MemberName() == "m1" }, 5*time.Second, time.Millisecond)
	waitNewServerEnd(t, ap, c, srv)
	ap.writeEchoed(t, c, src, sent, 1024, 2048)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	ap.finishEcho(t, c, sent, got, 0, "m0", "m1")
}

// TestMoveLinkLostThenDialFails: the link breaks while the move dials, and
// the dial fails: the session reconnects to its member, and every byte
// arrives.
func TestMoveLinkLostThenDialFails(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	target := ap.addr("m1")
	dialing, letDial := make(chan struct{}), make(chan struct{})
	var failed atomic.Bool
	d := &Dialer{Logger: testLogger(t),
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target && failed.CompareAndSwap(false, true) {
				close(dialing)
				<-letDial
				return nil, errors.New("target unreachable (test)")
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	src := newPattern(1<<20, 3)
	sent, got := sha256.New(), sha256.New()
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	buf := make([]byte, 1024)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-dialing
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	_ = l.nc.Close()
	require.Eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.link == nil }, 5*time.Second, time.Millisecond)
	close(letDial)
	require.ErrorIs(t, <-moved, ErrMoveFailed)
	ap.writeEchoed(t, c, src, sent, 1024, 2048)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	ap.finishEcho(t, c, sent, got, 0, "m0")
}

// TestMovePauseCountsFromLinkLoss: when the link breaks while the move
// dials, the session stands still from then on, and the client's Metrics
// count the move's pause from then, not from when it left a link it no
// longer had.
func TestMovePauseCountsFromLinkLoss(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	target := ap.addr("m1")
	dialing, letDial := make(chan struct{}), make(chan struct{})
	metrics := &pauseMetrics{}
	var dialed atomic.Bool
	d := &Dialer{Logger: testLogger(t), Metrics: metrics,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target && dialed.CompareAndSwap(false, true) {
				close(dialing)
				<-letDial
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	src := newPattern(1<<20, 3)
	sent, got := sha256.New(), sha256.New()
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	buf := make([]byte, 1024)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	old := ap.serverConn(c.SessionID())
	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-dialing
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	closed := time.Now()
	_ = l.nc.Close()
	require.Eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.link == nil }, 5*time.Second, time.Millisecond,
		"the client sees its link broken")
	const held = 300 * time.Millisecond
	time.Sleep(held)
	close(letDial)
	require.NoError(t, <-moved)
	stood := time.Since(closed)
	pause := time.Duration(metrics.pause.Load())
	t.Logf("stood still %v; Metrics.Moved pause %v", stood, pause)
	require.GreaterOrEqual(t, pause, held, "the pause counts from the link's loss")
	require.LessOrEqual(t, pause, stood)
	waitNewServerEnd(t, ap, c, old)
	ap.writeEchoed(t, c, src, sent, 1024, 2048)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	ap.finishEcho(t, c, sent, got, 0, "m0", "m1")
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
func failFirstDialTo(t *testing.T, target string) (*Dialer, chan struct{}) {
	failed := make(chan struct{})
	var once atomic.Bool
	d := &Dialer{Logger: testLogger(t),
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target && once.CompareAndSwap(false, true) {
				close(failed)
				return nil, errors.New("target unreachable for a moment (test)")
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	return d, failed
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
	src := newPattern(1<<20, 5)
	sent, got := sha256.New(), sha256.New()
	buf := make([]byte, 1024)
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)

	srv := ap.serverConn(c.SessionID())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	srvMoved := make(chan error, 1)
	go func() { srvMoved <- srv.Migrate(ctx, target) }()
	<-failed // the client obeyed the MOVE, and its dial failed

	echoStart := time.Now()
	p := make([]byte, 1024)
	_, _ = io.ReadFull(src, p)
	sent.Write(p)
	_, err = c.Write(p)
	require.NoError(t, err)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	echoTook := time.Since(echoStart)
	t.Logf("the echo after the failed dial took %v (on %s)", echoTook, c.MemberName())
	require.Less(t, echoTook, time.Second, "the stream stood still after the client's move failed")
	require.NoError(t, <-srvMoved, "the member asks again, and the session moves")
	require.Eventually(t, func() bool { return c.MemberName() == "m1" }, 5*time.Second, time.Millisecond)
	waitNewServerEnd(t, ap, c, srv)
	ap.finishEcho(t, c, sent, got, 0, "m0", "m1")
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
	src := newPattern(1<<20, 7)
	sent, got := sha256.New(), sha256.New()
	buf := make([]byte, 1024)
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
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
	ap.writeEchoed(t, c, src, sent, 1024, 2048)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	ap.finishEcho(t, c, sent, got, 0, "m0", "m1")
}

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
	dialing, letDial := make(chan struct{}), make(chan struct{})
	var failed atomic.Bool
	metrics := &resumeMetrics{}
	d := &Dialer{Logger: testLogger(t), Metrics: metrics,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target && failed.CompareAndSwap(false, true) {
				close(dialing)
				<-letDial
				return nil, errors.New("target unreachable (test)")
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	src := newPattern(1<<20, 3)
	sent, got := sha256.New(), sha256.New()
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	buf := make([]byte, 1024)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-dialing
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	closed := time.Now()
	_ = l.nc.Close()
	require.Eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.link == nil }, 5*time.Second, time.Millisecond)
	const held = 300 * time.Millisecond
	time.Sleep(held)
	close(letDial)
	require.ErrorIs(t, <-moved, ErrMoveFailed)
	require.Eventually(t, func() bool { return metrics.resumed.Load() != 0 }, 10*time.Second, time.Millisecond)
	stood := time.Since(closed)
	pause := time.Duration(metrics.resumed.Load())
	t.Logf("stood still about %v; Metrics.Resumed pause %v", stood, pause)
	require.GreaterOrEqual(t, pause, held, "the pause counts from the link's loss")
	require.LessOrEqual(t, pause, stood)
	ap.writeEchoed(t, c, src, sent, 1024, 2048)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	ap.finishEcho(t, c, sent, got, 0, "m0")
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
	src := newPattern(1<<20, 3)
	sent, got := sha256.New(), sha256.New()
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	buf := make([]byte, 1024)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
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
	ap.writeEchoed(t, c, src, sent, 1024, 2048)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	ap.finishEcho(t, c, sent, got, 0, "m0")
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
	src := newPattern(1<<20, 5)
	sent, got := sha256.New(), sha256.New()
	buf := make([]byte, 1024)
	wrote := 0
	echo := func() time.Duration {
		t.Helper()
		start := time.Now()
		wrote += 1024
		ap.writeEchoed(t, c, src, sent, 1024, wrote)
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.ReadFull(c, buf)
		require.NoError(t, err)
		got.Write(buf)
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
	ap.finishEcho(t, c, sent, got, 0, "m0")
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
	src := newPattern(1<<20, 11)
	sent, got := sha256.New(), sha256.New()
	buf := make([]byte, 1024)
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)

	srv := ap.serverConn(c.SessionID())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	srvMoved := make(chan error, 1)
	go func() { srvMoved <- srv.Migrate(ctx, ap.addr("m1")) }()
	require.Eventually(t, func() bool { return pol.asked.Load() >= 1 }, 5*time.Second, time.Millisecond)
	start := time.Now()
	ap.writeEchoed(t, c, src, sent, 1024, 2048)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	took := time.Since(start)
	t.Logf("the echo after the obeyed move failed took %v; the policy was asked %d times", took, pol.asked.Load())
	require.Less(t, took, 2*time.Second, "the stream stood still for the member's settle timer")
	require.ErrorIs(t, <-srvMoved, context.DeadlineExceeded, "the session cannot move")
	ap.finishEcho(t, c, sent, got, 0, "m0")
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
			src := newPattern(1<<20, 9)
			sent, got := sha256.New(), sha256.New()
			ap.writeEchoed(t, c, src, sent, 1024, 1024)
			buf := make([]byte, 1024)
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := io.ReadFull(c, buf)
			require.NoError(t, err)
			got.Write(buf)
			srv := ap.serverConn(c.SessionID())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err = srv.Migrate(ctx, target)
			t.Logf("server Migrate: %v; target dials %d; resumes %d; on %s", err, dials.Load(), metrics.resumed.Load(), c.MemberName())
			if n < 3 {
				require.NoError(t, err)
				require.Eventually(t, func() bool { return c.MemberName() == "m1" }, 5*time.Second, time.Millisecond)
				waitNewServerEnd(t, ap, c, srv)
			}
			start := time.Now()
			ap.writeEchoed(t, c, src, sent, 1024, 2048)
			_, err = io.ReadFull(c, buf)
			require.NoError(t, err)
			got.Write(buf)
			require.Less(t, time.Since(start), 2*time.Second, "the stream stood still")
			if n < 3 {
				ap.finishEcho(t, c, sent, got, 0, "m0", "m1")
			} else {
				ap.finishEcho(t, c, sent, got, 0, "m0")
			}
		})
	}
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
	src := newPattern(1<<20, 27)
	sent, got := sha256.New(), sha256.New()
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	buf := make([]byte, 1024)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	err = c.Migrate(context.Background(), target)
	t.Logf("Migrate: %v", err)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.link != nil || c.ended
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Err(), "the session was lost though m1 holds it")
	require.Equal(t, "m1", c.MemberName())
	ap.writeEchoed(t, c, src, sent, 1024, 2048)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	ap.finishEcho(t, c, sent, got, 0, "m0", "m1")
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
	src := newPattern(1<<20, 21)
	sent, got := sha256.New(), sha256.New()
	buf := make([]byte, 1024)
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)

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
	ap.writeEchoed(t, c, src, sent, 1024, 2048)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	ap.finishEcho(t, c, sent, got, 0, "m0", "m1")
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
	src := newPattern(1<<20, 31)
	sent, got := sha256.New(), sha256.New()
	buf := make([]byte, 1024)
	ap.writeEchoed(t, c, src, sent, 1024, 1024)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
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
	ap.writeEchoed(t, c, src, sent, 1024, 2048)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	got.Write(buf)
	ap.finishEcho(t, c, sent, got, 0, "m0", "m1")
}
