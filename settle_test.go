package mtcp

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSettleTimeoutFallsBack: a session whose application stopped
// checkpointing never sits at a checkpoint boundary; a server's move waits
// for one until the SettleTimeout, then goes as things are, and the new
// member regenerates the output after the checkpoint: every byte once, in
// order.
func TestSettleTimeoutFallsBack(t *testing.T) {
	ap := startAppPool(t, 2, func(c *Config) { c.SettleTimeout = time.Second },
		appOptions{checkpoint: checkpointOnceAt(50_000)})
	defer ap.close()
	c, err := (&Dialer{Logger: testLogger(t)}).Dial("tcp", ap.addr("m0"))
	require.NoError(t, err)
	mc := c.(*Conn)
	waitMembers(t, c, 2)
	es := newEchoSession(c, 31)
	require.NoError(t, es.round(100_000, 10*time.Second))

	sc := serverEnd(ap.member("m0"), mc.SessionID())
	require.NotNil(t, sc)
	moved := make(chan error, 1)
	go func() { moved <- sc.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m1")) }()
	require.Eventually(t, func() bool { return sc.Status().Settling }, 5*time.Second, time.Millisecond,
		"the move waits for a boundary")
	require.NoError(t, <-moved)
	require.Eventually(t, func() bool { return mc.MemberName() == "m1" }, 10*time.Second, time.Millisecond)
	require.NoError(t, es.round(64<<10, 10*time.Second))
	ap.finishSession(t, es)
	require.Equal(t, []string{"m0", "m1"}, ap.servedBy(mc.SessionID()))
	require.Empty(t, ap.errors())
}

// stayPolicy ignores the server's requests to move.
type stayPolicy struct{ DefaultPolicy }

func (*stayPolicy) MoveRequested(string, MoveReason) string { return "" }

// TestHeldSessionReleasedWhenClientStays: a session held at its checkpoint
// for a move whose client does not go is let go on after the handshake
// timeout: its server's Migrate gives up, and the session goes on there.
func TestHeldSessionReleasedWhenClientStays(t *testing.T) {
	ap := startAppPool(t, 2, func(c *Config) { c.HandshakeTimeout = 500 * time.Millisecond }, appOptions{})
	defer ap.close()
	c, err := (&Dialer{Logger: testLogger(t), Policy: &stayPolicy{}}).Dial("tcp", ap.addr("m0"))
	require.NoError(t, err)
	mc := c.(*Conn)
	waitMembers(t, c, 2)
	es := newEchoSession(c, 32)
	require.NoError(t, es.round(64<<10, 10*time.Second))

	sc := serverEnd(ap.member("m0"), mc.SessionID())
	require.NotNil(t, sc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.ErrorIs(t, sc.Migrate(ctx, ap.addr("m1")), context.DeadlineExceeded, "the client stays")
	require.False(t, sc.Status().Settling, "no longer held")
	require.NoError(t, es.round(64<<10, 10*time.Second), "the session goes on where it was")
	require.Equal(t, "m0", mc.MemberName())
	ap.finishSession(t, es)
	require.Empty(t, ap.errors())
}
