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
