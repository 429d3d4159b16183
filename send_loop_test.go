package mtcp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// nothingDue reports whether c's link has nothing to send (nil: no link).
func nothingDue(c *Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link != nil && c.link.nothingDueLocked()
}

// sendLoops is how many send loops c's link started (-1: no link).
func sendLoops(c *Conn) int32 {
	if l := linkOf(c); l != nil {
		return l.loops.Load()
	}
	return -1
}

// TestQuietMoveStartsNoSendLoop: a session with nothing to send moves. Its
// client's new link has nothing due (the PROOF told the member where the
// client is; RESUMED and the member list came in the handshake), so it
// starts no send loop, which would only find nothing and end; the next
// round of the echo starts one, and every byte arrives.
func TestQuietMoveStartsNoSendLoop(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	c := ap.dial(t, nil, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 41)
	require.NoError(t, es.round(4096, 10*time.Second))
	require.Eventually(t, func() bool { return nothingDue(c) }, 5*time.Second, time.Millisecond,
		"the client's acknowledgements go out: %s", c.debugState())

	require.NoError(t, c.Migrate(context.Background(), ap.addr("m1")))
	require.Equal(t, "m1", c.MemberName())
	// The new member's application checkpoints as it starts: its MARK, at
	// a position the client knows, asks the client for nothing.
	time.Sleep(100 * time.Millisecond)
	require.Zero(t, sendLoops(c), "the client's new link: %s", c.debugState())

	require.NoError(t, es.round(4096, 10*time.Second))
	require.Positive(t, sendLoops(c), "the client sent its round through a send loop")
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0", "m1")
}

// TestMoveWaitingForBoundaryStartsNoSendLoop: the member asks a session to
// move while its application is past its last checkpoint. The MOVE waits
// for the next checkpoint boundary, and no send loop starts for it until
// then (one would find the MOVE not yet due). At the boundary the MOVE goes
// and the session moves, with every byte delivered once.
func TestMoveWaitingForBoundaryStartsNoSendLoop(t *testing.T) {
	var allow atomic.Bool
	allow.Store(true)
	ap := startAppPool(t, 2, func(c *Config) {
		c.Replicas = 1
		c.SettleTimeout = time.Minute
	}, appOptions{checkpoint: func(_, _ int64) bool { return allow.Load() }})
	defer ap.close()
	c := ap.dial(t, nil, "m0")
	defer c.Close() // if the test fails
	es := newEchoSession(c, 43)
	require.NoError(t, es.round(4096, 10*time.Second))
	allow.Store(false)
	require.NoError(t, es.round(4096, 10*time.Second)) // past the last checkpoint
	srv := ap.serverConn(c.SessionID())
	require.Eventually(t, func() bool { return nothingDue(srv) }, 5*time.Second, time.Millisecond,
		"the member's acknowledgements go out: %s", srv.debugState())
	before := sendLoops(srv)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	moved := make(chan error, 1)
	go func() { moved <- srv.Migrate(ctx, ap.addr("m1")) }()
	require.Eventually(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.server.moveTo != nil
	}, 5*time.Second, time.Millisecond, "the member asks for the move")
	time.Sleep(100 * time.Millisecond)
	srv.mu.Lock()
	sent := srv.server.moveSent
	srv.mu.Unlock()
	require.False(t, sent, "the MOVE waits for a checkpoint boundary")
	require.Equal(t, before, sendLoops(srv), "no send loop started for a MOVE not due: %s", srv.debugState())

	allow.Store(true)
	require.NoError(t, es.round(4096, 10*time.Second)) // checkpointed: the boundary
	require.NoError(t, <-moved)
	require.Eventually(t, func() bool { return c.MemberName() == "m1" }, 5*time.Second, time.Millisecond)
	waitNewServerEnd(t, ap, c, srv)
	require.NoError(t, es.round(4096, 10*time.Second))
	ap.finishEcho(t, c, es.sent, es.recv, 0, "m0", "m1")
}
