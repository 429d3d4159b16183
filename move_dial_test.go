package mtcp

import (
	"context"
	"crypto/sha256"
	"hash"
	"io"
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
	gate := newDialGate(target, false)
	metrics := &pauseMetrics{}
	d := &Dialer{Logger: testLogger(t), Metrics: metrics, DialFunc: gate.dial}
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
	<-gate.dialing
	for range 4 {
		echo() // on the link the session has, while the dial waits
	}
	require.Equal(t, "m0", c.MemberName())
	const held = 200 * time.Millisecond
	time.Sleep(held)
	close(gate.release)
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
	require.EqualValues(t, 2, w.gate.dials.Load(), "the client dials the target again once it can resume")
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
	gate      *dialGate // holds the first dial to the target
}

func startWaitingMove(t *testing.T, ap *appPool) *waitingMove {
	const retention = 64 << 10
	w := &waitingMove{moved: make(chan error, 1), wrote: make(chan error, 1),
		sent: sha256.New(), got: sha256.New(), total: 4 * retention}
	target := ap.addr("m1")
	w.gate = newDialGate(target, false)
	gate := w.gate
	d := &Dialer{Logger: testLogger(t), Retention: retention, Window: 16 << 10, DialFunc: gate.dial}
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
	<-gate.dialing
	go func() {
		_, err := io.Copy(c, io.TeeReader(io.LimitReader(src, w.total), w.sent))
		w.wrote <- err
	}()
	require.Eventually(t, func() bool { return !resumable() }, 20*time.Second, time.Millisecond,
		"the member lets the client free its input beyond every checkpoint it knows")
	close(gate.release)
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
	l := linkOf(c)
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

// TestMoveLinkLostThenDialFails: the link breaks while the move dials, and
// the dial fails: the session reconnects to its member, and every byte
// arrives.
func TestMoveLinkLostThenDialFails(t *testing.T) {
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
	l := linkOf(c)
	_ = l.nc.Close()
	require.Eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.link == nil }, 5*time.Second, time.Millisecond)
	close(gate.release)
	require.ErrorIs(t, <-moved, ErrMoveFailed)
	require.NoError(t, es.round(1024, 10*time.Second))
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0")
}

// TestMovePauseCountsFromLinkLoss: when the link breaks while the move
// dials, the session stands still from then on, and the client's Metrics
// count the move's pause from then, not from when it left a link it no
// longer had.
func TestMovePauseCountsFromLinkLoss(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	target := ap.addr("m1")
	gate := newDialGate(target, false)
	metrics := &pauseMetrics{}
	d := &Dialer{Logger: testLogger(t), Metrics: metrics, DialFunc: gate.dial}
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 3)
	require.NoError(t, es.round(1024, 10*time.Second))
	old := ap.serverConn(c.SessionID())
	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-gate.dialing
	l := linkOf(c)
	closed := time.Now()
	_ = l.nc.Close()
	require.Eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.link == nil }, 5*time.Second, time.Millisecond,
		"the client sees its link broken")
	const held = 300 * time.Millisecond
	time.Sleep(held)
	close(gate.release)
	require.NoError(t, <-moved)
	stood := time.Since(closed)
	pause := time.Duration(metrics.pause.Load())
	t.Logf("stood still %v; Metrics.Moved pause %v", stood, pause)
	require.GreaterOrEqual(t, pause, held, "the pause counts from the link's loss")
	require.LessOrEqual(t, pause, stood)
	waitNewServerEnd(t, ap, c, old)
	require.NoError(t, es.round(1024, 10*time.Second))
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0", "m1")
}
