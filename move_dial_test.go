package mtcp

import (
	"context"
	"crypto/sha256"
	"io"
	"net"
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
// checkpoint fits, and the move would be refused. It waits on the link for
// a mark it can resume from instead, which comes once its application
// reads again; the move succeeds and every byte arrives, SHA-256 both ways.
func TestMoveLeavesLinkOnlyWhenResumable(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	const (
		retention = 64 << 10
		total     = 4 * retention
	)
	target := ap.addr("m1")
	dialing, letDial := make(chan struct{}), make(chan struct{})
	d := &Dialer{Logger: testLogger(t), Retention: retention, Window: 16 << 10,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == target {
				close(dialing)
				<-letDial
			}
			return (&net.Dialer{}).DialContext(ctx, network, address)
		}}
	c := ap.dial(t, d, "m0")
	defer c.Close() // if the test fails
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	// A first echo: the client hears of a checkpoint it can resume from.
	first := make([]byte, 1<<10)
	sent, got := sha256.New(), sha256.New()
	src := newPattern(total+int64(len(first)), 17)
	_, _ = io.ReadFull(src, first)
	sent.Write(first)
	_, err := c.Write(first)
	require.NoError(t, err)
	echo := make([]byte, len(first))
	_, err = io.ReadFull(c, echo)
	require.NoError(t, err)
	got.Write(echo)
	resumable := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.client.resumableLocked(c)
	}
	require.Eventually(t, resumable, 10*time.Second, time.Millisecond, "the client hears of a checkpoint")

	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(context.Background(), target) }()
	<-dialing
	// The client writes without reading, while the dial waits.
	wrote := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, io.TeeReader(io.LimitReader(src, total), sent))
		wrote <- err
	}()
	require.Eventually(t, func() bool { return !resumable() }, 20*time.Second, time.Millisecond,
		"the member lets the client free its input beyond every checkpoint it knows")
	close(letDial)
	// The move waits on the link; its application reads again a while later.
	time.Sleep(200 * time.Millisecond)
	read := make(chan error, 1)
	go func() {
		_, err := io.CopyN(got, c, total)
		read <- err
	}()
	require.NoError(t, <-moved, "the move waits for a checkpoint it can resume from")
	require.Equal(t, "m1", c.MemberName())
	require.NoError(t, <-wrote)
	require.NoError(t, <-read)
	require.Equal(t, sent.Sum(nil), got.Sum(nil), "the echo is the input, byte for byte")
	require.Equal(t, []string{"m0", "m1"}, ap.servedBy(c.SessionID()))
}
