package mtcp

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migratory/mtcp/internal/faultproxy"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestSessionMovesThreeTimes echoes 16 MiB through a stateful application
// while the client moves the session to another member twice and then its
// member drains.
func TestSessionMovesThreeTimes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tp := startPool(t, 3, nil)
	defer tp.close()

	d := &Dialer{Logger: testLogger(t)}
	c, err := d.Dial("tcp", tp.members[0].Addr().String())
	require.NoError(t, err)
	mc := c.(*Conn)
	waitMembers(t, c, 3)
	require.Equal(t, "m0", mc.ServerName())

	const n = 16 << 20
	var moves atomic.Int32
	var moveErrs []error
	targets := []string{tp.members[1].Addr().String(), tp.members[2].Addr().String()}
	res := echoTransfer(c, n, 7, func(got int64) {
		// Each move happens while data flows both ways; the reader waits
		// for it here, the writer goes on.
		k := moves.Load()
		if k >= 3 || got < int64(k+1)*n/4 {
			return
		}
		moves.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if k < 2 {
			moveErrs = append(moveErrs, mc.Migrate(ctx, targets[k]))
			return
		}
		moveErrs = append(moveErrs, tp.member("m2").Drain(ctx)) // the third move: m2 drains
	})
	require.Len(t, moveErrs, 3)
	for _, err := range moveErrs {
		require.NoError(t, err)
	}
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
	require.Eventually(t, func() bool { return tp.apps.finalDigest(mc.SessionID()) != nil }, 5*time.Second, 10*time.Millisecond)
	requireTransferOK(t, res, n, 7, tp.apps.finalDigest(mc.SessionID()))
	require.Empty(t, tp.apps.errors())
	served := tp.apps.servedBy(mc.SessionID())
	require.Len(t, served, 4, "served by: %v", served)
	require.Equal(t, []string{"m0", "m1", "m2"}, served[:3])
	require.Contains(t, []string{"m0", "m1"}, served[3], "the drain moved it to a member still in the pool")
	require.Equal(t, served[3], mc.ServerName())
}

// TestMoveOnPathFailure: the path from the client to its member goes
// silent while the member itself is fine; the client resumes through another
// member, which takes the session over from the first.
func TestMoveOnPathFailure(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tp := startPool(t, 3, nil)
	defer tp.close()
	m0 := tp.members[0].Addr().String()
	px, err := faultproxy.New(m0)
	require.NoError(t, err)
	defer px.Close()

	// The client reaches m0 only through the proxy; the others directly.
	d := &Dialer{
		Logger: testLogger(t), KeepAlive: 50 * time.Millisecond, KeepAliveTimeout: 300 * time.Millisecond,
		HandshakeTimeout: 200 * time.Millisecond,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			if address == m0 {
				address = px.Addr()
			}
			var nd net.Dialer
			return nd.DialContext(ctx, network, address)
		},
	}
	c, err := d.Dial("tcp", m0)
	require.NoError(t, err)
	mc := c.(*Conn)
	waitMembers(t, c, 3)

	const n = 8 << 20
	var cut atomic.Bool
	res := echoTransfer(c, n, 11, func(got int64) {
		if got >= n/3 && !cut.Swap(true) {
			px.Blackhole()
		}
	})
	px.Heal()
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
	require.Eventually(t, func() bool { return tp.apps.finalDigest(mc.SessionID()) != nil }, 5*time.Second, 10*time.Millisecond)
	requireTransferOK(t, res, n, 11, tp.apps.finalDigest(mc.SessionID()))
	served := tp.apps.servedBy(mc.SessionID())
	require.Len(t, served, 2, "served by %v", served)
	require.Equal(t, "m0", served[0])
	require.NotEqual(t, "m0", mc.ServerName(), "the session left the member it could not reach")
}
