package mtcp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestClientMovesSessionTwice echoes 16 MiB through a stateful application
// while the client moves the session to another member twice.
func TestClientMovesSessionTwice(t *testing.T) {
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
	moveErr := make(chan error, 2)
	targets := []string{tp.members[1].Addr().String(), tp.members[2].Addr().String()}
	res := echoTransfer(c, n, 7, func(got int64) {
		k := moves.Load()
		if k < 2 && got >= int64(k+1)*n/3 && moves.CompareAndSwap(k, k+1) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				moveErr <- mc.Migrate(ctx, targets[k])
			}()
		}
	})
	require.NoError(t, <-moveErr)
	require.NoError(t, <-moveErr)
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
	require.Equal(t, "m2", mc.ServerName())
	require.Eventually(t, func() bool { return tp.apps.finalDigest(mc.SessionID()) != nil }, 5*time.Second, 10*time.Millisecond)
	requireTransferOK(t, res, n, 7, tp.apps.finalDigest(mc.SessionID()))
	require.Empty(t, tp.apps.errors())
	require.Equal(t, []string{"m0", "m1", "m2"}, tp.apps.servedBy(mc.SessionID()))
}
