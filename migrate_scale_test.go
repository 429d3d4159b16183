package mtcp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/migratory/mtcp/internal/parallel"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/pool"
)

// gatedEchoTransfer is echoTransfer whose writer stops after pauseAt bytes
// until gate is closed; reads give up after a minute.
func gatedEchoTransfer(c net.Conn, n int64, seed uint64, pauseAt int64, gate, end <-chan struct{}, onProgress func(int64)) transferResult {
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	src := newPattern(n, seed)
	return echoTransferFrom(c, io.MultiReader(io.LimitReader(src, pauseAt), gateReader(gate), src, gateReader(end)), onProgress)
}

// gateReader blocks a read until the gate is closed, then says io.EOF.
type gateReader <-chan struct{}

func (g gateReader) Read([]byte) (int, error) {
	<-g
	return 0, io.EOF
}

// loadedPool configures the members of a pool under heavy load (hundreds
// of sessions moving at once under the race detector on two cores): LAN
// failure detection, which does not declare a busy member dead after a few
// late probes, and handshakes given time to wait for handovers. Under that
// load a handover can take seconds; with the default 5 s timeouts a client
// gives up a move that its member still completes, which hits the bugs of
// TestResumeRacingHandover and TestLateHandoverRequest.
func loadedPool(cfg *Config) {
	cfg.PoolProfile = pool.ProfileLAN
	cfg.HandshakeTimeout = 30 * time.Second
}

const loadedHandshake = 40 * time.Second

// waitGroupWithin waits for wg, failing the test after d.
func waitGroupWithin(t testing.TB, wg *sync.WaitGroup, d time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: not done after %v", what, d)
	}
}

// TestMigrateHundredSessionsAtOnce: 100 sessions on one member, each in the
// middle of an echo, are moved at once by 100 concurrent Migrate calls,
// half to each other member. Every session's bytes arrive once, in order,
// both ways, and its application state follows it.
func TestMigrateHundredSessionsAtOnce(t *testing.T) {
	tp := startAppPool(t, 3, loadedPool, appOptions{})
	defer tp.close()
	m0 := tp.member("m0")
	targets := []*Listener{tp.member("m1"), tp.member("m2")}

	const sessions = 100
	const n = 256 << 10
	d := &Dialer{Logger: testLogger(t), HandshakeTimeout: loadedHandshake}
	conns := make([]*Conn, sessions)
	for i := range conns {
		c, err := d.Dial("tcp", m0.Addr().String())
		require.NoError(t, err)
		conns[i] = c.(*Conn)
	}
	for _, c := range conns {
		waitMembers(t, c, 3)
	}
	require.Equal(t, sessions, m0.Sessions())

	// Each session echoes a quarter of its bytes and has half of them
	// written, then waits for the others.
	gates, ends := make([]chan struct{}, sessions), make([]chan struct{}, sessions)
	var ready, transfers sync.WaitGroup
	ready.Add(sessions)
	results := make([]transferResult, sessions)
	for i, c := range conns {
		gates[i], ends[i] = make(chan struct{}), make(chan struct{})
		transfers.Add(1)
		go func() {
			defer transfers.Done()
			var once sync.Once
			results[i] = gatedEchoTransfer(c, n, uint64(1000+i), n/2, gates[i], ends[i], func(got int64) {
				if got >= n/4 {
					once.Do(ready.Done)
				}
			})
			once.Do(ready.Done) // a transfer that failed early
		}()
	}
	waitGroupWithin(t, &ready, 30*time.Second, "sessions ready")

	// All at once, while the rest of the data flows (from the moment its
	// move begins; a session ends its input only after its move, so that
	// none can finish first).
	start := make(chan struct{})
	moveErrs := make([]error, sessions)
	var moves sync.WaitGroup
	for i, c := range conns {
		moves.Add(1)
		go func() {
			defer moves.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			close(gates[i])
			moveErrs[i] = c.Migrate(ctx, targets[i%2].Addr().String())
			close(ends[i]) // the session ends after its move, not during it
		}()
	}
	began := time.Now()
	close(start)
	waitGroupWithin(t, &moves, 60*time.Second, "moves")
	t.Logf("%d sessions moved in %v", sessions, time.Since(began))
	waitGroupWithin(t, &transfers, 60*time.Second, "transfers")

	for i, c := range conns {
		require.NoError(t, moveErrs[i], "session %d", i)
		require.Equal(t, targets[i%2].NodeName(), c.MemberName(), "session %d", i)
		require.NoError(t, c.Close())
	}
	for _, c := range conns {
		waitSessionEnd(t, c)
	}
	for i, c := range conns {
		id := c.SessionID()
		require.Eventually(t, func() bool { return tp.finalDigest(id) != nil }, 5*time.Second, 5*time.Millisecond)
		requireTransferOK(t, results[i], n, uint64(1000+i), tp.finalDigest(id))
		require.Equal(t, []string{"m0", targets[i%2].NodeName()}, tp.servedBy(id), "session %d", i)
	}
	require.Eventually(t, func() bool { return m0.Sessions() == 0 }, 5*time.Second, 5*time.Millisecond)
	require.Empty(t, tp.errors())
}

// raiseFileLimit raises the soft limit on open files to at least want (or
// the hard limit).
func raiseFileLimit(t testing.TB, want uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Logf("getrlimit: %v", err)
		return
	}
	if lim.Cur >= want {
		return
	}
	old := lim.Cur
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Logf("setrlimit: %v", err)
		return
	}
	t.Logf("open files: soft limit raised from %d to %d", old, lim.Cur)
}

// TestDrainThousandSessions: a member holding 1,000 sessions drains while a
// quarter of them echo; every session ends up on another member, with every
// byte delivered once, in order, both ways, and its application state.
func TestDrainThousandSessions(t *testing.T) {
	const sessions = 1000
	raiseFileLimit(t, 8*sessions)
	tp := startAppPool(t, 3, loadedPool, appOptions{})
	defer tp.close()
	m0 := tp.member("m0")

	began := time.Now()
	d := &Dialer{Logger: testLogger(t), HandshakeTimeout: loadedHandshake}
	es := make([]*echoSession, sessions)
	defer func() { // on failure, let the applications end
		for _, s := range es {
			if s != nil {
				_ = s.c.Close()
			}
		}
	}()
	err := parallel.ForEach(context.Background(), sessions, 16, func(i int) error {
		c, err := d.Dial("tcp", m0.Addr().String())
		if err != nil {
			return err
		}
		es[i] = newEchoSession(c, uint64(5000+i))
		return es[i].round(16<<10, 30*time.Second)
	})
	require.NoError(t, err)
	require.Equal(t, sessions, m0.Sessions())
	t.Logf("%d sessions opened and echoing in %v", sessions, time.Since(began))

	// A quarter of the sessions echo all through the drain.
	var drained atomic.Bool
	busyRounds := make([]int, sessions)
	var busy sync.WaitGroup
	busyErrs := make(chan error, sessions)
	for i := 0; i < sessions; i += 4 {
		busy.Add(1)
		go func() {
			defer busy.Done()
			for first := true; first || !drained.Load(); first = false {
				if err := es[i].round(16<<10, 30*time.Second); err != nil {
					busyErrs <- fmt.Errorf("session %d (%s, on %s): %w; server ends: %s", i, es[i].c.SessionID(),
						es[i].c.MemberName(), err, describeServerEnds(tp.members, es[i].c.SessionID()))
					return
				}
				busyRounds[i]++
			}
		}()
	}
	drainStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = m0.Drain(ctx)
	drainTook := time.Since(drainStart)
	drained.Store(true)
	require.NoError(t, err)
	t.Logf("drained %d sessions in %v", sessions, drainTook)
	waitGroupWithin(t, &busy, 60*time.Second, "sessions echoing during the drain")
	close(busyErrs)
	for err := range busyErrs {
		require.NoError(t, err)
	}
	rounds := 0
	for _, r := range busyRounds {
		rounds += r
	}
	t.Logf("%d rounds of 16 KiB echoed by %d sessions during the drain", rounds, sessions/4)

	require.Zero(t, m0.Sessions())
	on := map[string]int{}
	for _, s := range es {
		on[s.c.MemberName()]++
	}
	t.Logf("sessions after the drain: %v", on)
	require.Zero(t, on["m0"])
	require.Equal(t, sessions, on["m1"]+on["m2"])
	require.NotZero(t, on["m1"])
	require.NotZero(t, on["m2"])

	// Every session goes on where it is, then ends.
	err = parallel.ForEach(context.Background(), sessions, 16, func(i int) error {
		s := es[i]
		if err := s.round(16<<10, 30*time.Second); err != nil {
			return err
		}
		sent, err := s.finish(30 * time.Second)
		if err != nil {
			return err
		}
		select {
		case <-s.c.endedCh:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("session %d did not end: %s", i, s.c.debugState())
		}
		id := s.c.SessionID()
		deadline := time.Now().Add(5 * time.Second)
		for tp.finalDigest(id) == nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if !bytes.Equal(sent, tp.finalDigest(id)) {
			return fmt.Errorf("session %d: the application did not read what was sent", i)
		}
		if served := tp.servedBy(id); !slices.Equal(served, []string{"m0", s.c.MemberName()}) {
			return fmt.Errorf("session %d: served by %v, now on %s", i, served, s.c.MemberName())
		}
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, tp.errors())
	t.Logf("whole test: %v", time.Since(began))
}
