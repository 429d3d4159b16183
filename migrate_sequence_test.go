package mtcp

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// checkpointOnceAt checkpoints once, after the input passes pos.
func checkpointOnceAt(pos int64) func(consumed, since int64) bool {
	return func(consumed, since int64) bool { return consumed >= pos && consumed-since < pos }
}

// TestMoveAgainWhileRegenerating: a session restored on m1 moves on to m2
// before m1's application has regenerated the output the client already
// has. m2 restores the same checkpoint and regenerates it again; the
// session goes on, every byte once, in order.
func TestMoveAgainWhileRegenerating(t *testing.T) {
	var slow atomic.Bool
	ap := startAppPool(t, 3, nil, appOptions{
		checkpoint: checkpointOnceAt(100_000),
		output: func(member string, restored bool, p []byte) []byte {
			if member == "m1" && restored && slow.CompareAndSwap(false, true) {
				time.Sleep(300 * time.Millisecond) // m1 regenerates slowly
			}
			return p
		},
	})
	defer ap.close()
	es := ap.openEcho(t, nil, "m0", 21, 150_000)
	mc, id := es.c, es.c.SessionID()

	require.NoError(t, mc.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m1")))
	sc := serverEnd(ap.member("m1"), id)
	require.NotNil(t, sc)
	sc.mu.Lock()
	pending := sc.server.verifyPending
	sc.mu.Unlock()
	require.True(t, pending, "m1 still regenerates")
	require.NoError(t, mc.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m2")))
	require.Equal(t, "m2", mc.MemberName())
	require.NoError(t, es.round(64<<10, 10*time.Second))
	// m1's application may start after m2's: the session was already gone.
	require.ElementsMatch(t, []string{"m0", "m1", "m2"}, ap.servedBy(id))
	require.Equal(t, "m0", ap.servedBy(id)[0])
	require.ErrorIs(t, ap.waitEnd(id, "m1"), ErrMigrated)

	ap.finishSession(t, es)
	require.Empty(t, ap.errors())
}

// TestMoveHalfClosedSession: a session moves after its client's CloseWrite,
// while the server still writes: the new member's application reads the
// same end of input, the client reads the whole output, then EOF.
func TestMoveHalfClosedSession(t *testing.T) {
	tp := startAppPool(t, 2, nil, appOptions{})
	defer tp.close()
	mc := tp.dial(t, nil, "m0")
	c := net.Conn(mc)
	const n = 4 << 20
	// Everything is written and the end sent before the client reads a
	// byte; it moves after reading a quarter of the echo.
	_, err := io.Copy(c, newPattern(n, 22))
	require.NoError(t, err)
	require.NoError(t, mc.CloseWrite())
	var moveErr error
	got := int64(0)
	buf := make([]byte, 32<<10)
	moved := false
	h := newEchoSession(c, 0).recv
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	for {
		k, err := c.Read(buf)
		h.Write(buf[:k])
		got += int64(k)
		if got >= n/4 && !moved {
			moved = true
			moveErr = mc.Migrate(ctxTimeout(t, 10*time.Second), tp.member("m1").Addr().String())
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			_ = c.Close()
			waitSessionEnd(t, c)
		}
		require.NoError(t, err)
	}
	require.NoError(t, moveErr)
	require.Equal(t, "m1", mc.MemberName())
	require.EqualValues(t, n, got)
	require.Equal(t, digestOf(n, 22), h.Sum(nil))
	require.Equal(t, digestOf(n, 22), tp.closeSession(t, c))
	require.Empty(t, tp.errors())
}

// TestConcurrentMigrateCalls: two Migrate calls on one client at once: one
// moves the session, the other fails with ErrMoveInProgress (or finds the
// session already where it asked); a client and a server asking at once
// leave the session on one member, working.
func TestConcurrentMigrateCalls(t *testing.T) {
	tp := startAppPool(t, 3, nil, appOptions{})
	defer tp.close()
	es := tp.openEcho(t, nil, "m0", 23, 64<<10)
	mc, id := es.c, es.c.SessionID()

	for round := 0; round < 5; round++ {
		from := mc.MemberName()
		var others []string
		for _, ln := range tp.members {
			if ln.NodeName() != from {
				others = append(others, ln.Addr().String())
			}
		}
		sc := serverEnd(tp.member(from), id)
		require.NotNil(t, sc)
		before := len(tp.servedBy(id))
		var wg sync.WaitGroup
		errs := make([]error, 3)
		start := make(chan struct{})
		for i, to := range others {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = mc.Migrate(ctxTimeout(t, 10*time.Second), to)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[2] = sc.Migrate(ctxTimeout(t, 10*time.Second), "")
		}()
		close(start)
		wg.Wait()
		// The server's request may have been the one that moved the
		// session: its client is still finishing the move.
		require.Eventually(t, func() bool { return mc.MemberName() != from }, 5*time.Second, time.Millisecond)
		t.Logf("round %d from %s: client %v / %v, server %v; now on %s", round, from, errs[0], errs[1], errs[2], mc.MemberName())
		moved := 0
		for _, err := range errs[:2] {
			if err == nil {
				moved++
				continue
			}
			require.True(t, errors.Is(err, ErrMoveInProgress), "%v", err)
		}
		require.NoError(t, errs[2], "the server's request: the session left")
		require.NoError(t, es.round(64<<10, 10*time.Second))
		served := tp.servedBy(id)
		require.Equal(t, mc.MemberName(), served[len(served)-1])
		// Each move that happened is one restore on a new member: the
		// successful client calls, and perhaps the server's request.
		moves := served[before:]
		require.NotEmpty(t, moves)
		require.LessOrEqual(t, len(moves), moved+1, "served by %v", served)
		for i, m := range moves {
			require.NotEqual(t, served[before+i-1], m, "a move goes to another member: %v", served)
		}
	}
	tp.finishSession(t, es)
	require.Empty(t, tp.errors())
}

// TestDrainWithUnmovableSession: a member drains while one of its sessions
// cannot move (its application never checkpoints): the movable one moves,
// new sessions dialed to the member go to another one, the unmovable one
// goes on where it is, and Drain gives up when its context ends, saying
// how many sessions remained.
func TestDrainWithUnmovableSession(t *testing.T) {
	var first sync.Once
	var stuckID string
	ap := startAppPool(t, 2, nil, appOptions{unmovable: func(id string) bool {
		first.Do(func() { stuckID = id })
		return id == stuckID
	}})
	defer ap.close()
	m0 := ap.member("m0")
	d := &Dialer{Logger: testLogger(t)}
	stuck := ap.openEcho(t, d, "m0", 24, 64<<10) // the first session: it never checkpoints
	moving := ap.openEcho(t, d, "m0", 25, 64<<10)
	require.False(t, ap.serverConn(stuck.c.SessionID()).Movable())
	require.Equal(t, 2, m0.Sessions())

	drained := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go func() { drained <- m0.Drain(ctx) }()
	require.Eventually(t, func() bool { return moving.c.MemberName() == "m1" }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, moving.round(64<<10, 10*time.Second))
	// A new session dialed to the draining member lands on m1.
	c, err := d.Dial("tcp", m0.Addr().String())
	require.NoError(t, err)
	require.Equal(t, "m1", c.(*Conn).MemberName())
	fresh := newEchoSession(c, 26)
	require.NoError(t, fresh.round(64<<10, 10*time.Second))
	// The unmovable one stays, and works.
	require.NoError(t, stuck.round(64<<10, 10*time.Second))
	require.Equal(t, "m0", stuck.c.MemberName())

	err = <-drained
	t.Logf("drain: %v", err)
	require.ErrorIs(t, err, ErrDrainIncomplete)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "1 sessions remain")
	// The listener is closed; the session goes on while its link holds.
	require.NoError(t, stuck.round(64<<10, 10*time.Second))
	for _, es := range []*echoSession{stuck, moving, fresh} {
		ap.finishSession(t, es)
	}
	require.Equal(t, []string{"m0"}, ap.servedBy(stuck.c.SessionID()))
	require.Equal(t, []string{"m0", "m1"}, ap.servedBy(moving.c.SessionID()))
	require.Equal(t, []string{"m1"}, ap.servedBy(fresh.c.SessionID()))
	require.Empty(t, ap.errors())
}

// TestMoveWithUnreadOutput: a session moves while its client has output
// received but not read yet, and the restored application regenerates
// slowly. The client reads its buffered output meanwhile (its ACKs carry
// the release of everything it had received); the session goes on.
func TestMoveWithUnreadOutput(t *testing.T) {
	ap := startAppPool(t, 2, nil, appOptions{
		checkpoint: checkpointOnceAt(100_000),
		output: func(member string, restored bool, p []byte) []byte {
			if restored {
				time.Sleep(10 * time.Millisecond) // regenerates slowly, reading as it goes
			}
			return p
		},
	})
	defer ap.close()
	mc := ap.dial(t, nil, "m0")
	id := mc.SessionID()
	c := net.Conn(mc)
	// 1 MiB written, echoed into the client's window, not read.
	const n = 1 << 20
	_, err := io.Copy(c, newPattern(n, 27))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		mc.mu.Lock()
		defer mc.mu.Unlock()
		return mc.st.Received() == n
	}, 10*time.Second, 5*time.Millisecond, "the echo is in the client's window")

	require.NoError(t, mc.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m1")))
	require.NoError(t, mc.CloseWrite())
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	h := newEchoSession(c, 0).recv
	k, err := io.Copy(h, c)
	require.NoError(t, err)
	require.EqualValues(t, n, k)
	require.Equal(t, digestOf(n, 27), h.Sum(nil))
	require.Equal(t, digestOf(n, 27), ap.closeSession(t, c))
	require.Equal(t, []string{"m0", "m1"}, ap.servedBy(id))
	require.Empty(t, ap.errors())
}

// TestMovesIntoBusyAcceptBacklog: more sessions move to a member than its
// accept backlog holds while its application is not accepting yet. A
// session that was handed over must not be dropped for want of room in the
// backlog: either it waits for Accept, or the move is refused before the
// handover and it stays where it was.
func TestMovesIntoBusyAcceptBacklog(t *testing.T) {
	const sessions, backlog = 8, 2
	gate := make(chan struct{})
	ap := startAppPool(t, 2, func(cfg *Config) {
		cfg.AcceptBacklog = backlog
		cfg.HandshakeTimeout = time.Second
	}, appOptions{acceptGate: func(member string) <-chan struct{} {
		if member == "m1" {
			return gate
		}
		return nil
	}})
	defer ap.close()
	d := &Dialer{Logger: testLogger(t)}
	es := make([]*echoSession, sessions)
	for i := range es {
		es[i] = ap.openEcho(t, d, "m0", uint64(40+i), 16<<10)
		defer es[i].c.Close()
	}
	var wg sync.WaitGroup
	moveErrs := make([]error, sessions)
	for i, s := range es {
		wg.Add(1)
		go func() {
			defer wg.Done()
			moveErrs[i] = s.c.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m1"))
		}()
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // longer than the members' handshake timeout
	close(gate)
	for i, s := range es {
		t.Logf("session %d: move %v, on %s", i, moveErrs[i], s.c.MemberName())
	}
	for i, s := range es {
		require.NoError(t, s.round(16<<10, 10*time.Second), "session %d (move: %v)", i, moveErrs[i])
		// After a round the application that serves the session has
		// answered, so servedBy is complete.
		id := s.c.SessionID()
		if moveErrs[i] == nil {
			require.Equal(t, "m1", s.c.MemberName(), "session %d moved", i)
			require.Equal(t, []string{"m0", "m1"}, ap.servedBy(id), "session %d moved", i)
		} else {
			require.Equal(t, "m0", s.c.MemberName(), "session %d (move: %v) stays", i, moveErrs[i])
			require.Equal(t, []string{"m0"}, ap.servedBy(id), "session %d (move: %v) stays", i, moveErrs[i])
		}
		ap.finishSession(t, s)
	}
	require.Empty(t, ap.errors())
}
