package mtcp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

// The read token across a new link. On a busy machine a session's new link
// can be attached before its background reader has run again since the old
// link was closed: the background reader still holds the token on the old
// link. A Read that then asked for the token interrupted the new link, and
// when the old link's read failed (not timed out) the background reader
// left without waking that Read: the session stood still until the link's
// keepalive check, half a keepalive interval later (500 ms by default; one
// move of fifty in mtcp-scale's moves scenario). The test puts the session
// in that state by hand: it attaches a second link while the background
// reader holds the token on the first, which stays open until a Read asks.

// TestReadTakesTokenFromReaderOfOldLink plays the server.
func TestReadTakesTokenFromReaderOfOldLink(t *testing.T) {
	c := scriptedClient(t) // its keepalive check, which would end the wait, comes after 10 s

	// Nobody reads: the background reader holds the token on the first link.
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.holder == holderBackground
	}, 5*time.Second, time.Millisecond)

	// A second link is attached while it still does.
	old := linkOf(c)
	srv2, _ := attachScripted(t, c)

	// A Read asks for the token; then the first link closes.
	read := startRead(c)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.appWants || c.holder == holderApp
	}, 5*time.Second, time.Millisecond, "the Read asks for the token")
	old.shutdown()

	// The Read reads the new link.
	srv2.send(frame(wire.Data{Seq: 0, Payload: []byte("moved")}))
	select {
	case res := <-read:
		require.NoError(t, res.err)
		require.Equal(t, "moved", res.s)
	case <-time.After(5 * time.Second):
		t.Fatalf("the Read waited for the keepalive check: %s", c.debugState())
	}
}
