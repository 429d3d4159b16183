package mtcp

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/transport"
)

// holdReplication makes every member of the pool hold the checkpoint
// copies it is sent until the returned function is called.
func holdReplication(t testing.TB, members []*Listener) (release func()) {
	gate := make(chan struct{})
	for _, ln := range members {
		hookControl(t, ln, pool.KindReplicate, func(h transport.Handler) transport.Handler {
			return func(ctx context.Context, from string, decode func(any) error) (any, error) {
				select {
				case <-gate:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				return h(ctx, from, decode)
			}
		})
	}
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// TestInputKeptFromTheFirstCheckpoint: the application checkpoints once,
// when the session starts, and never again; its input arrives before that
// checkpoint is durable (its copy is on its way). The client must keep the
// input after it all the same: the session stays movable, as Checkpoint
// promises once the application has called it.
func TestInputKeptFromTheFirstCheckpoint(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ap := startAppPool(t, 3, func(c *Config) { c.Replicas = 1 }, appOptions{
		checkpoint: func(int64, int64) bool { return false },
	})
	defer ap.close()
	release := holdReplication(t, ap.members)
	defer release()
	c, err := (&Dialer{Logger: testLogger(t)}).Dial("tcp", ap.addr("m0"))
	require.NoError(t, err)
	mc := c.(*Conn)
	waitMembers(t, c, 3)
	es := newEchoSession(c, 5)
	require.NoError(t, es.round(64<<10, 10*time.Second))
	release()

	sc := ap.serverConn(mc.SessionID())
	require.Eventually(t, func() bool {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		return sc.server.durable != nil
	}, 10*time.Second, time.Millisecond, "the first checkpoint becomes durable")
	require.True(t, sc.Movable(), "the client kept the input after the checkpoint")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, mc.Migrate(ctx, ap.addr("m1")))
	require.NoError(t, es.round(64<<10, 10*time.Second))
	ap.finishSession(t, es)
	require.Equal(t, []string{"m0", "m1"}, ap.servedBy(mc.SessionID()))
	require.Empty(t, ap.errors())
}
