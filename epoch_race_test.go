package mtcp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/transport"
)

// stallHandovers makes a member answer handover requests only after d, as a
// member stalled by a long pause would.
func stallHandovers(t testing.TB, ln *Listener, d time.Duration) {
	hookControl(t, ln, pool.KindHandover, func(h transport.Handler) transport.Handler {
		return func(ctx context.Context, from string, decode func(any) error) (any, error) {
			time.Sleep(d)
			return h(ctx, from, decode)
		}
	})
}

// epochsOf describes where a session lives: for each member, the epoch of
// its live server end (0 if none) and whether it is attached, and the
// newest epoch its replica store knows.
func epochsOf(members []*Listener, id string) (live map[string]uint64, attached []string, newest uint64) {
	live = map[string]uint64{}
	for _, ln := range members {
		c := serverEnd(ln, id)
		if c != nil {
			c.mu.Lock()
			if !c.ended {
				live[ln.NodeName()] = c.server.epoch
				newest = max(newest, c.server.epoch)
				if c.link != nil {
					attached = append(attached, ln.NodeName())
				}
			}
			c.mu.Unlock()
			newest = max(newest, ln.member.StoredEpoch(c.id))
		}
	}
	return live, attached, newest
}

// TestNoStaleEpochAfterFailoverClaim: the session's member stalls while the
// client moves; the client's move times out and it resumes at its member,
// while the move's target, whose handover request timed out too, takes the
// session over from the replicas at a newer epoch. No member may go on
// serving the older epoch.
func TestNoStaleEpochAfterFailoverClaim(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	mc := ap.dial(t, &Dialer{Logger: testLogger(t), HandshakeTimeout: 800 * time.Millisecond}, "m0")
	c := net.Conn(mc)
	id := mc.SessionID()
	es := newEchoSession(c, 21)
	require.NoError(t, es.round(64<<10, 10*time.Second))
	require.Eventually(t, func() bool { return serverEnd(ap.member("m0"), id).Status().CrashSafe }, 5*time.Second, 10*time.Millisecond)

	stallHandovers(t, ap.member("m0"), 1500*time.Millisecond)
	err := mc.Migrate(context.Background(), ap.addr("m1"))
	require.Error(t, err, "the move times out")
	time.Sleep(2500 * time.Millisecond) // the target's takeover and the stalled answer are over

	require.NoError(t, es.round(64<<10, 15*time.Second))
	live, attached, newest := epochsOf(ap.members, id)
	t.Logf("live server ends %v, attached at %v, newest epoch %d; the client is at %s, epoch %d",
		live, attached, newest, mc.MemberName(), mc.Status().Epoch)
	require.Len(t, attached, 1, "one member serves the session")
	require.Equal(t, newest, live[attached[0]], "the member serving the session holds its newest epoch")
	for name, e := range live {
		require.Equal(t, newest, e, "%s still holds the session at an older epoch", name)
	}
	ap.finishSession(t, es)
}

// TestAbandonedMoveDoesNotTakeEffect: a client's move times out while the
// session's member is stalled, and the client resumes at its member and
// goes on. The handover request of the abandoned move reaches the member
// afterwards: it must be refused, for the positions it carries are no
// longer the client's (handing the session over would lose it).
func TestAbandonedMoveDoesNotTakeEffect(t *testing.T) {
	// No replicas: the target waits for the handover. The application
	// checkpoints only at first, so that the stale request still finds a
	// checkpoint that fits the positions it carries.
	ap := startAppPool(t, 2, nil, appOptions{checkpoint: func(consumed, _ int64) bool { return consumed <= 64<<10 }})
	defer ap.close()
	mc := ap.dial(t, &Dialer{Logger: testLogger(t), HandshakeTimeout: 800 * time.Millisecond}, "m0")
	c := net.Conn(mc)
	es := newEchoSession(c, 22)
	require.NoError(t, es.round(64<<10, 10*time.Second))

	stallHandovers(t, ap.member("m0"), 1500*time.Millisecond)
	require.Error(t, mc.Migrate(context.Background(), ap.addr("m1")), "the move times out")
	// The client is back at m0 and its session goes on while the stale
	// handover request waits at m0.
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); {
		require.NoError(t, es.round(16<<10, 10*time.Second))
	}
	require.NoError(t, es.round(64<<10, 10*time.Second))
	require.Equal(t, "m0", mc.MemberName())
	ap.finishSession(t, es)
}
