package mtcp

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migratory/mtcp/internal/parallel"

	"github.com/stretchr/testify/require"
)

// TestDrainMovesEachSessionOnce: a member with copies of its checkpoints on
// the others drains 300 sessions while a third of them echo. Every session
// moves exactly once (its epoch is raised once, its client's Metrics count
// one move and no failover, and it was served by the drained member and
// one other), none is taken from the replicas of the member that drains,
// and the sessions spread over both other members.
func TestDrainMovesEachSessionOnce(t *testing.T) {
	const sessions = 300
	raiseFileLimit(t, 8*sessions)
	tp := startAppPool(t, 3, func(c *Config) { loadedPool(c); c.Replicas = 1 }, appOptions{})
	defer tp.close()
	m0 := tp.member("m0")
	var moved, failedOver atomic.Int64
	d := &Dialer{Logger: testLogger(t), HandshakeTimeout: loadedHandshake,
		Metrics: countMoves{moved: &moved, failedOver: &failedOver}}
	es := make([]*echoSession, sessions)
	defer func() {
		for _, s := range es {
			if s != nil {
				_ = s.c.Close()
			}
		}
	}()
	require.NoError(t, parallel.ForEach(context.Background(), sessions, 16, func(i int) error {
		c, err := d.Dial("tcp", m0.Addr().String())
		if err != nil {
			return err
		}
		es[i] = newEchoSession(c, uint64(9000+i))
		return es[i].round(4<<10, 30*time.Second)
	}))
	require.Equal(t, sessions, m0.Sessions())
	epochs := make([]uint64, sessions)
	for i, s := range es {
		epochs[i] = s.c.Status().Epoch
	}

	var drained atomic.Bool
	var busy sync.WaitGroup
	busyErrs := make(chan error, sessions)
	for i := 0; i < sessions; i += 3 {
		busy.Add(1)
		go func() {
			defer busy.Done()
			for !drained.Load() {
				if err := es[i].round(4<<10, 30*time.Second); err != nil {
					busyErrs <- fmt.Errorf("session %d: %w", i, err)
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, m0.Drain(ctx))
	drained.Store(true)
	waitGroupWithin(t, &busy, time.Minute, "sessions echoing during the drain")
	close(busyErrs)
	for err := range busyErrs {
		require.NoError(t, err)
	}

	on := map[string]int{}
	for i, s := range es {
		require.NoError(t, s.round(4<<10, 30*time.Second), "session %d after the drain", i)
		st := s.c.Status()
		require.Equal(t, epochs[i]+1, st.Epoch, "session %d: epoch raises", i)
		require.NotEqual(t, "m0", st.Member)
		on[st.Member]++
		if served := tp.servedBy(s.c.SessionID()); !slices.Equal(served, []string{"m0", st.Member}) {
			t.Fatalf("session %d: served by %v", i, served)
		}
	}
	t.Logf("sessions after the drain: %v; moves %d, failovers %d", on, moved.Load(), failedOver.Load())
	require.Equal(t, int64(sessions), moved.Load(), "one move per session")
	require.Zero(t, failedOver.Load(), "none taken from the replicas of the member that drains")
	require.NotZero(t, on["m1"])
	require.NotZero(t, on["m2"])
	for _, s := range es {
		_, err := s.finish(30 * time.Second)
		require.NoError(t, err)
	}
}

// countMoves counts a Dialer's moves and failovers.
type countMoves struct {
	noMetrics
	moved, failedOver *atomic.Int64
}

func (m countMoves) Moved(time.Duration)      { m.moved.Add(1) }
func (m countMoves) FailedOver(time.Duration) { m.failedOver.Add(1) }
