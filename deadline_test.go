package mtcp

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A session that never set a deadline has no deadline channel (wait gives
// nil). A Read or Write waiting since then holds none, and is woken when the
// first deadline is set.

// TestFirstReadDeadlineWakesWaitingRead: a Read waiting with no link and no
// deadline returns a timeout when a past deadline is set.
func TestFirstReadDeadlineWakesWaitingRead(t *testing.T) {
	c := linklessClient(t)
	read := startRead(c)
	require.Eventually(t, c.readWaiting.Load, 5*time.Second, time.Millisecond, "the Read waits")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(-time.Second)))
	select {
	case res := <-read:
		require.ErrorIs(t, res.err, os.ErrDeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatalf("the Read did not see its deadline: %s", c.debugState())
	}
}

// TestFirstWriteDeadlineWakesWaitingWrite: a Write waiting for room (no
// link, its retention full) with no deadline returns a timeout, with the
// bytes retained counted, when a past deadline is set.
func TestFirstWriteDeadlineWakesWaitingWrite(t *testing.T) {
	c := linklessClient(t)
	type writeResult struct {
		n   int
		err error
	}
	wrote := make(chan writeResult, 1)
	big := make([]byte, DefaultRetention+64<<10)
	go func() {
		n, err := c.Write(big)
		wrote <- writeResult{n, err}
	}()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.wantsAcks
	}, 5*time.Second, time.Millisecond, "the Write waits for room")
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(-time.Second)))
	select {
	case res := <-wrote:
		require.ErrorIs(t, res.err, os.ErrDeadlineExceeded)
		require.Positive(t, res.n)
		require.Less(t, res.n, len(big))
	case <-time.After(5 * time.Second):
		t.Fatalf("the Write did not see its deadline: %s", c.debugState())
	}
}
