package mtcp

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/transfer"
)

// TestSessionMovesThreeTimes echoes 16 MiB through a stateful application
// while the client moves the session to another member twice and then its
// member drains.
func TestSessionMovesThreeTimes(t *testing.T) {
	tp := startPool(t, 3, nil)
	defer tp.close()

	mc := tp.dial(t, nil, "m0")
	c := net.Conn(mc)
	require.Equal(t, "m0", mc.MemberName())

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
	requireTransferOK(t, res, n, 7, tp.closeSession(t, c))
	require.Empty(t, tp.apps.errors())
	served := tp.apps.servedBy(mc.SessionID())
	require.Len(t, served, 4, "served by: %v", served)
	require.Equal(t, []string{"m0", "m1", "m2"}, served[:3])
	require.Contains(t, []string{"m0", "m1"}, served[3], "the drain moved it to a member still in the pool")
	require.Equal(t, served[3], mc.MemberName())
	// Each successor settled its handover with the member that handed the
	// session over: none of their answers is kept to be asked for again.
	for _, name := range []string{"m0", "m1"} {
		require.Eventually(t, func() bool { return tp.member(name).member.Unsettled() == 0 },
			10*time.Second, 20*time.Millisecond, "%s's handover settled", name)
	}
}

// TestMoveOnPathFailure: the path from the client to its member goes
// silent while the member itself is fine; the client resumes through another
// member, which takes the session over from the first.
func TestMoveOnPathFailure(t *testing.T) {
	tp := startPool(t, 3, nil)
	defer tp.close()
	m0 := tp.members[0].Addr().String()
	px := newProxy(t, m0)
	defer px.Close()

	// The client reaches m0 only through the proxy; the others directly.
	d := &Dialer{
		Logger: testLogger(t), KeepAlive: 50 * time.Millisecond, KeepAliveTimeout: 300 * time.Millisecond,
		HandshakeTimeout: 200 * time.Millisecond,
		DialFunc:         dialVia(m0, px.Addr()),
	}
	mc := tp.dial(t, d, "m0")
	c := net.Conn(mc)

	const n = 8 << 20
	var cut atomic.Bool
	res := echoTransfer(c, n, 11, func(got int64) {
		if got >= n/3 && !cut.Swap(true) {
			px.Blackhole()
		}
	})
	px.Heal()
	requireTransferOK(t, res, n, 11, tp.closeSession(t, c))
	served := tp.apps.servedBy(mc.SessionID())
	require.Len(t, served, 2, "served by %v", served)
	require.Equal(t, "m0", served[0])
	require.NotEqual(t, "m0", mc.MemberName(), "the session left the member it could not reach")
}

// dialVia returns a Dialer's DialFunc that reaches addr through via, and
// every other address directly.
func dialVia(addr, via string) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if address == addr {
			address = via
		}
		var nd net.Dialer
		return nd.DialContext(ctx, network, address)
	}
}

// policyPool starts a pool and a session on m0 whose client reaches m0
// through a toxiproxy, with a policy that reacts within a few seconds;
// stop closes the proxy and the pool.
func policyPool(t *testing.T) (tp *testPool, px *toxicProxy, mc *Conn, stop func()) {
	tp = startPool(t, 3, nil)
	m0 := tp.members[0].Addr().String()
	px = newToxicProxy(t, m0)
	d := &Dialer{
		Logger:   testLogger(t),
		Policy:   &DefaultPolicy{Settle: 500 * time.Millisecond, DropFor: 2, StallAfter: 1500 * time.Millisecond},
		DialFunc: dialVia(m0, px.Addr()),
	}
	return tp, px, tp.dial(t, d, "m0"), func() {
		px.Close()
		tp.close()
	}
}

// TestPolicyMovesOnThroughputDrop: the path to the session's member slows
// to a crawl; the default policy moves the session to a less loaded member.
func TestPolicyMovesOnThroughputDrop(t *testing.T) {
	tp, px, mc, stop := policyPool(t)
	defer stop()

	const n = 32 << 20
	const rate = 8 << 20 // bytes per second
	var slowed atomic.Bool
	res := echoPaced(mc, n, 21, rate, func(got int64) {
		if got >= 2*rate && !slowed.Swap(true) {
			px.limit(64) // KB/s: a fraction of the session's level
		}
	})
	requireTransferOK(t, res, n, 21, tp.closeSession(t, mc))
	require.NotEqual(t, "m0", mc.MemberName(), "the policy moved the session off the slow path")
	require.Equal(t, "m0", tp.apps.servedBy(mc.SessionID())[0])
}

// TestPolicyMovesOnStall: the session's member stops taking its bytes
// (overloaded) while it still answers pings; the policy moves the session.
func TestPolicyMovesOnStall(t *testing.T) {
	tp, _, mc, stop := policyPool(t)
	defer stop()

	const n = 16 << 20
	const rate = 8 << 20
	var resume func()
	res := echoPaced(mc, n, 22, rate, func(got int64) {
		if got >= rate && resume == nil {
			resume = tp.apps.pause("m0")
		}
	})
	if resume != nil {
		resume()
	}
	requireTransferOK(t, res, n, 22, tp.closeSession(t, mc))
	require.NotEqual(t, "m0", mc.MemberName(), "the policy moved the session off the stalled member")
}

// echoPaced is echoTransfer with the client writing at about rate bytes/s.
func echoPaced(c net.Conn, n int64, seed uint64, rate float64, onProgress func(int64)) transferResult {
	return echoTransferFrom(c, transfer.NewPaced(newPattern(n, seed), rate), onProgress)
}

// TestBalanceSpreadsSessions: 30 sessions open on one member of a pool
// whose members balance load; they spread over the members.
func TestBalanceSpreadsSessions(t *testing.T) {
	tp := startPool(t, 3, func(c *Config) { c.Balance = &Balance{Interval: 1500 * time.Millisecond} })
	defer tp.close()
	var conns []net.Conn
	for i := 0; i < 30; i++ {
		c, err := (&Dialer{}).Dial("tcp", tp.members[0].Addr().String())
		require.NoError(t, err)
		conns = append(conns, c)
	}
	require.Eventually(t, func() bool {
		for _, ln := range tp.members {
			if ln.Sessions() < 5 {
				return false
			}
		}
		return true
	}, 20*time.Second, 100*time.Millisecond, "sessions spread over the pool")
	// Every session still works.
	for i, c := range conns {
		msg := []byte(fmt.Sprintf("session %d", i))
		_, err := c.Write(msg)
		require.NoError(t, err)
		got := make([]byte, len(msg))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		require.Equal(t, msg, got)
	}
	for _, c := range conns {
		require.NoError(t, c.(*Conn).CloseWrite())
		_, _ = io.Copy(io.Discard, c)
		require.NoError(t, c.Close())
		waitSessionEnd(t, c)
	}
	t.Logf("sessions: m0 %d, m1 %d, m2 %d (ended)", tp.members[0].Sessions(), tp.members[1].Sessions(), tp.members[2].Sessions())
}

// TestPolicySharedBySessions: one DefaultPolicy serves every session of a
// Dialer, whose checks run concurrently; under -race, state kept in the
// policy is a data race.
func TestPolicySharedBySessions(t *testing.T) {
	ap := startAppPool(t, 2, nil, appOptions{})
	defer ap.close()
	d := &Dialer{Logger: testLogger(t), Policy: &DefaultPolicy{Settle: time.Millisecond}}
	const sessions = 4
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.Dial("tcp", ap.addr("m0"))
			if err != nil {
				errs <- err
				return
			}
			es := newEchoSession(c, uint64(i))
			// Busy, then quiet: the policy's checks see both.
			for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
				if err := es.round(32<<10, 10*time.Second); err != nil {
					errs <- err
					return
				}
			}
			time.Sleep(1500 * time.Millisecond)
			if err := es.round(32<<10, 10*time.Second); err != nil {
				errs <- err
				return
			}
			ap.finishSession(t, es)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Empty(t, ap.errors())
}
