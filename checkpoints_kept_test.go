package mtcp

import (
	"context"
	"crypto/sha256"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCheckpointsKeptSpreadOut: the client reads nothing while an echo
// that checkpoints after every read answers hundreds of pieces, so its
// output piles up beyond the client's window, past the checkpoints the
// server keeps. Those kept stay spread over the whole output; once the
// client has read half of it and moves, the successor restores a
// checkpoint a short way before what the client received and regenerates
// little. (The server used to keep the oldest ones and the newest: the move
// regenerated nearly all the output the client had read.)
func TestCheckpointsKeptSpreadOut(t *testing.T) {
	ap := startAppPool(t, 2, func(c *Config) { c.Replicas = 1 }, appOptions{})
	defer ap.close()
	const (
		window = 16 << 10
		piece  = 4 << 10
		total  = 200 * piece
	)
	c := ap.dial(t, &Dialer{Logger: testLogger(t), Window: window}, "m0")
	defer c.Close() // if the test fails
	id := c.SessionID()
	src := newPattern(total, 9)
	sent := sha256.New()
	for wrote := piece; wrote <= total; wrote += piece {
		ap.writeEchoed(t, c, src, sent, piece, wrote)
	}
	sc := ap.serverConn(id)
	sc.mu.Lock()
	var outs []uint64
	for _, r := range sc.server.ckpts {
		outs = append(outs, r.OutPos)
	}
	sc.mu.Unlock()
	widest := uint64(0)
	for i := 1; i < len(outs); i++ {
		widest = max(widest, outs[i]-outs[i-1])
	}
	spacing := uint64(total) / (maxCheckpoints - 1) // were they evenly spread
	t.Logf("checkpoints kept at output positions %v: widest gap %d", outs, widest)
	require.LessOrEqual(t, widest, 2*spacing+piece, "the checkpoints kept spread over the output")

	// The client reads half the echo and moves.
	got := sha256.New()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.CopyN(got, c, total/2)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Migrate(ctx, ap.addr("m1")))
	moved := ap.serverConn(id)
	moved.mu.Lock()
	from, to, _, _ := moved.st.RegeneratedDigest()
	moved.mu.Unlock()
	t.Logf("the successor regenerates output %d to %d", from, to)
	require.LessOrEqual(t, to-from, 2*spacing+piece, "output regenerated after the move")

	ap.finishEcho(t, c, sent, got, total-total/2, "m0", "m1")
}
