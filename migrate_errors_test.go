package mtcp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/transport"
)

// waitDraining waits until the client's view of the pool shows member name
// draining (or not).
func waitDraining(t testing.TB, c *Conn, name string, draining bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, m := range c.Members() {
			if m.Name == name {
				return m.Draining == draining
			}
		}
		return false
	}, 5*time.Second, 5*time.Millisecond, "the client hears that %s draining=%t", name, draining)
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestMigrateRefusedTargets: a move to no member, to a draining member, or
// with every other member draining fails with the error that says so, on
// the client and on the server, and the session goes on where it was.
func TestMigrateRefusedTargets(t *testing.T) {
	tp := startAppPool(t, 3, nil, appOptions{})
	defer tp.close()
	m0, m1, m2 := tp.member("m0"), tp.member("m1"), tp.member("m2")

	es := tp.openEcho(t, nil, "m0", 11, 0)
	mc, id := es.c, es.c.SessionID()
	stays := func(what string) {
		t.Helper()
		require.Equal(t, "m0", mc.MemberName(), what)
		require.NoError(t, es.round(64<<10, 10*time.Second), what)
		require.Equal(t, []string{"m0"}, tp.servedBy(id), what)
		require.NotNil(t, serverEnd(m0, id), what)
		require.Nil(t, serverEnd(m1, id), what)
		require.Nil(t, serverEnd(m2, id), what)
	}
	stays("before any move")
	sc := serverEnd(m0, id)
	require.True(t, sc.Movable())

	// No member at that address (a gossip address is not a client address).
	for _, to := range []string{"127.0.0.1:1", m1.GossipAddr(), "m1"} {
		err := mc.Migrate(ctxTimeout(t, 10*time.Second), to)
		require.ErrorIs(t, err, ErrUnknownMember, "client, to %q", to)
		err = sc.Migrate(ctxTimeout(t, 10*time.Second), to)
		require.ErrorIs(t, err, ErrUnknownMember, "server, to %q", to)
		stays("after a move to " + to)
	}
	// The session's own member: the client has nothing to do, the server
	// has no other member there.
	require.NoError(t, mc.Migrate(ctxTimeout(t, 10*time.Second), m0.Addr().String()))
	require.ErrorIs(t, sc.Migrate(ctxTimeout(t, 10*time.Second), m0.Addr().String()), ErrNoMember)
	stays("after a move to its own member")

	// m1 drains.
	require.NoError(t, m1.member.Membership().SetDraining(true))
	waitDraining(t, mc, "m1", true)
	err := mc.Migrate(ctxTimeout(t, 10*time.Second), m1.Addr().String())
	require.ErrorIs(t, err, ErrMemberDraining)
	require.NotErrorIs(t, err, ErrMoveFailed, "refused before anything moved")
	require.ErrorIs(t, sc.Migrate(ctxTimeout(t, 10*time.Second), m1.Addr().String()), ErrMemberDraining)
	stays("after a move to a draining member")

	// m2 drains too: no member is left to choose.
	require.NoError(t, m2.member.Membership().SetDraining(true))
	waitDraining(t, mc, "m2", true)
	require.ErrorIs(t, mc.Migrate(ctxTimeout(t, 10*time.Second), ""), ErrNoMember)
	require.ErrorIs(t, mc.Migrate(ctxTimeout(t, 10*time.Second), m2.Addr().String()), ErrMemberDraining)
	require.Eventually(t, func() bool {
		return len(m0.member.Membership().Eligible("m0")) == 0
	}, 5*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, sc.Migrate(ctxTimeout(t, 10*time.Second), ""), ErrNoMember)
	stays("with every other member draining")
	require.True(t, sc.Movable())

	// Both come back: the pool's choice is one of them.
	require.NoError(t, m1.member.Membership().SetDraining(false))
	require.NoError(t, m2.member.Membership().SetDraining(false))
	waitDraining(t, mc, "m1", false)
	waitDraining(t, mc, "m2", false)
	require.NoError(t, mc.Migrate(ctxTimeout(t, 10*time.Second), ""))
	to := mc.MemberName()
	require.Contains(t, []string{"m1", "m2"}, to)
	require.NoError(t, es.round(64<<10, 10*time.Second))
	require.Equal(t, []string{"m0", to}, tp.servedBy(id))

	tp.finishSession(t, es)
	require.Empty(t, tp.errors())
}

// TestMigrateToDrainingMemberStaleView: a client whose member list does not
// show yet that a member drains asks that member to take the session. The
// member refuses; the move must fail with ErrMemberDraining (or follow the
// member's redirect to a member that is not draining), and the session goes
// on.
func TestMigrateToDrainingMemberStaleView(t *testing.T) {
	tp := startAppPool(t, 3, nil, appOptions{})
	defer tp.close()
	m1 := tp.member("m1")
	es := tp.openEcho(t, nil, "m0", 12, 64<<10)
	mc, id := es.c, es.c.SessionID()

	require.NoError(t, m1.member.Membership().SetDraining(true))
	waitDraining(t, mc, "m1", true)
	// The client's list as it was a moment before: the MEMBERS frame that
	// says m1 drains is still on its way.
	mc.mu.Lock()
	for i := range mc.client.members {
		mc.client.members[i].Draining = false
	}
	mc.mu.Unlock()
	err := mc.Migrate(ctxTimeout(t, 10*time.Second), m1.Addr().String())
	t.Logf("migrate to the draining m1: %v", err)
	if err != nil {
		require.ErrorIs(t, err, ErrMemberDraining, "the move failed because m1 drains")
	}
	// Wherever it is, the session works, and not on m1.
	require.NoError(t, es.round(64<<10, 10*time.Second))
	require.NotEqual(t, "m1", mc.MemberName())
	served := tp.servedBy(id)
	require.Equal(t, mc.MemberName(), served[len(served)-1])
	if err != nil {
		require.Equal(t, "m0", mc.MemberName(), "a failed move leaves the session where it was")
	}
	tp.finishSession(t, es)
	require.Empty(t, tp.errors())
}

// TestMigrateWithoutCheckpoints: a session whose application never
// checkpoints (or stopped after its first checkpoint) cannot move: Migrate
// fails on both ends with ErrNotMovable, the server end reports it, the
// session goes on where it was, and its client writes far more than its
// retention without blocking: a Write never blocks forever because the
// application does not checkpoint.
func TestMigrateWithoutCheckpoints(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts appOptions
	}{
		{"never", appOptions{noCheckpoint: true}},
		{"once", appOptions{checkpoint: func(int64, int64) bool { return false }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap := startAppPool(t, 3, nil, tc.opts)
			defer ap.close()
			const retention = 256 << 10
			// A first round of more than the retention, so that a first
			// checkpoint no longer covers what the client holds.
			es := ap.openEcho(t, &Dialer{Logger: testLogger(t), Retention: retention}, "m0", 13, 4*retention)
			mc, id := es.c, es.c.SessionID()
			sc := ap.serverConn(id)
			require.False(t, sc.Movable())

			for _, to := range []string{ap.addr("m1"), ""} {
				err := mc.Migrate(ctxTimeout(t, 10*time.Second), to)
				require.ErrorIs(t, err, ErrMoveFailed, "to %q", to)
				require.ErrorIs(t, err, ErrNotMovable, "to %q", to)
				require.Equal(t, "m0", mc.MemberName())
				require.NoError(t, es.round(64<<10, 10*time.Second))
				require.ErrorIs(t, sc.Migrate(ctxTimeout(t, 10*time.Second), to), ErrNotMovable, "server, to %q", to)
				require.NoError(t, es.round(64<<10, 10*time.Second))
			}
			require.Equal(t, []string{"m0"}, ap.servedBy(id))
			require.Nil(t, serverEnd(ap.member("m1"), id))
			require.Nil(t, serverEnd(ap.member("m2"), id))

			// 16 MiB each way through a 256 KiB retention.
			start := time.Now()
			require.NoError(t, es.round(16<<20, 60*time.Second))
			t.Logf("16 MiB echoed in %v", time.Since(start))
			require.False(t, sc.Movable())
			require.True(t, mc.Movable(), "the client cannot tell: it is in a pool")

			ap.finishSession(t, es)
			require.Equal(t, []string{"m0"}, ap.servedBy(id))
			require.Empty(t, ap.errors())
		})
	}
}

// TestWriteOnlyWithoutCheckpoints: a client that only writes, to an
// application that only reads and never checkpoints, is never held back by
// its retention.
func TestWriteOnlyWithoutCheckpoints(t *testing.T) {
	ap := startAppPool(t, 2, nil, appOptions{noCheckpoint: true,
		output: func(string, bool, []byte) []byte { return nil }})
	defer ap.close()
	d := &Dialer{Logger: testLogger(t), Retention: 64 << 10}
	c, err := d.Dial("tcp", ap.addr("m0"))
	require.NoError(t, err)
	const n = 16 << 20
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(60*time.Second)))
	k, err := io.Copy(c, newPattern(n, 14))
	require.NoError(t, err)
	require.EqualValues(t, n, k)
	require.NoError(t, c.(*Conn).CloseWrite())
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	k, err = io.Copy(io.Discard, c)
	require.NoError(t, err)
	require.Zero(t, k)
	require.Equal(t, digestOf(n, 14), ap.closeSession(t, c))
	require.Empty(t, ap.errors())
}

// TestServerMigrate: the server application moves its session, once
// waiting in Migrate (to the pool's choice), once going on serving while
// the session leaves (back to the member it started on). Every byte
// arrives once, in order, both ways.
func TestServerMigrate(t *testing.T) {
	var step atomic.Int32
	moves := make(chan error, 2)
	var origin atomic.Value
	ap := startAppPool(t, 3, nil, appOptions{afterRead: func(member string, c *Conn, consumed int64) {
		switch {
		case member == "m0" && consumed >= 2<<20 && step.CompareAndSwap(0, 1):
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			moves <- c.Migrate(ctx, "")
		case member != "m0" && consumed >= 5<<20 && step.CompareAndSwap(1, 2):
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				moves <- c.Migrate(ctx, origin.Load().(string))
			}()
		}
	}})
	defer ap.close()
	origin.Store(ap.addr("m0"))

	mc := ap.dial(t, nil, "m0")
	id := mc.SessionID()
	const n = 8 << 20
	res := echoTransfer(mc, n, 15, nil)
	require.NoError(t, <-moves, "the move the application waited for")
	require.NoError(t, <-moves, "the move the application did not wait for")
	requireTransferOK(t, res, n, 15, ap.closeSession(t, mc))
	require.Empty(t, ap.errors())
	served := ap.servedBy(id)
	require.Len(t, served, 3, "served by %v", served)
	require.Equal(t, "m0", served[0])
	require.Contains(t, []string{"m1", "m2"}, served[1])
	require.Equal(t, "m0", served[2])
	require.Equal(t, "m0", mc.MemberName())
	require.ErrorIs(t, ap.waitEnd(id, "m0"), ErrMigrated, "the first run on m0")
	require.ErrorIs(t, ap.waitEnd(id, served[1]), ErrMigrated)
}

// divergent returns an output function that, after a restore, writes what
// a correct run would not: the input XORed, or an extra byte first.
func divergent(kind string) func(string, bool, []byte) []byte {
	var once atomic.Bool
	return func(member string, restored bool, p []byte) []byte {
		if !restored {
			return p
		}
		switch kind {
		case "xor":
			q := make([]byte, len(p))
			for i := range p {
				q[i] = p[i] ^ (0x40 + member[len(member)-1])
			}
			return q
		case "extra":
			if once.CompareAndSwap(false, true) {
				return append([]byte{member[len(member)-1]}, p...)
			}
		case "missing":
			if once.CompareAndSwap(false, true) {
				return p[1:]
			}
		}
		return p
	}
}

// TestDivergentRestoreFails: an application that, restored on another
// member, writes output that differs from what the client already received
// makes the session fail with ErrDiverged; the client never reads a wrong
// byte.
func TestDivergentRestoreFails(t *testing.T) {
	for _, kind := range []string{"xor", "extra", "missing"} {
		t.Run(kind, func(t *testing.T) {
			ap := startAppPool(t, 2, nil, appOptions{
				// One checkpoint after about 100 KB, so that a restore
				// regenerates what followed it.
				checkpoint: func(consumed, since int64) bool { return consumed >= 100_000 && consumed-since < 100_000 },
				output:     divergent(kind),
			})
			defer ap.close()
			es := ap.openEcho(t, nil, "m0", 16, 150_000)
			c, mc, id := net.Conn(es.c), es.c, es.c.SessionID()

			err := mc.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m1"))
			t.Logf("migrate: %v", err)
			if err != nil {
				require.ErrorIs(t, err, ErrDiverged)
			}
			if kind == "missing" {
				// One byte short: the application completes its regenerated
				// output only with one more byte of input.
				_, err = c.Write([]byte{1})
				require.NoError(t, err)
			}
			// The regenerated output is checked before anything new goes out:
			// the client reads nothing, then the reason.
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			k, err := c.Read(make([]byte, 1024))
			require.Zero(t, k, "nothing is read after the restore")
			t.Logf("read after the restore: %v", err)
			require.ErrorIs(t, err, ErrSessionLost)
			require.ErrorIs(t, err, ErrDiverged)
			var pe *PeerError
			require.ErrorAs(t, err, &pe, "the server found it and said so")
			require.Equal(t, CodeDiverged, pe.Code)
			_, err = c.Write([]byte("x"))
			require.ErrorIs(t, err, ErrDiverged)
			require.NoError(t, c.Close())
			waitSessionEnd(t, c)

			require.Equal(t, []string{"m0", "m1"}, ap.servedBy(id))
			require.ErrorIs(t, ap.waitEnd(id, "m0"), ErrMigrated)
			require.ErrorIs(t, ap.waitEnd(id, "m1"), ErrDiverged, "the restored application learns why")
			require.Nil(t, ap.finalDigest(id))
		})
	}
}

// TestDivergentRestoreFailsMidStream: the same while data flows both ways:
// the client moves the session after reading 1 MiB, the restored
// application XORs its output; every byte the client read is right, and
// the session then fails with ErrDiverged.
func TestDivergentRestoreFailsMidStream(t *testing.T) {
	ap := startAppPool(t, 2, nil, appOptions{
		checkpoint: func(consumed, since int64) bool { return consumed >= 300_001 && consumed-since < 300_001 },
		output:     divergent("xor"),
	})
	defer ap.close()
	// The client retains all its input: the checkpoint stays usable.
	mc := ap.dial(t, &Dialer{Logger: testLogger(t), Retention: 16 << 20}, "m0")
	id := mc.SessionID()
	c := net.Conn(mc)
	const n = 4 << 20
	var moveErr error
	moved := false
	res := echoTransfer(c, n, 17, func(got int64) {
		if got >= 1<<20 && !moved {
			moved = true
			moveErr = mc.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m1"))
		}
	})
	require.True(t, moved)
	t.Logf("migrate: %v; read %d bytes, then %v", moveErr, res.ReceivedN, res.ReadErr)
	if moveErr != nil {
		require.ErrorIs(t, moveErr, ErrDiverged)
	}
	require.ErrorIs(t, res.ReadErr, ErrSessionLost)
	require.ErrorIs(t, res.ReadErr, ErrDiverged)
	require.Less(t, res.ReceivedN, int64(n))
	require.Equal(t, digestOf(res.ReceivedN, 17), res.Received, "every byte read is what the echo sent")
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
	require.Equal(t, []string{"m0", "m1"}, ap.servedBy(id))
	require.ErrorIs(t, ap.waitEnd(id, "m0"), ErrMigrated)
	require.ErrorIs(t, ap.waitEnd(id, "m1"), ErrDiverged)
}

// TestAbortReasonReachesClient: when a server aborts a session (here:
// regenerated output diverged) while its client keeps writing, the client
// must learn why (ErrDiverged), not find later that the session is unknown.
func TestAbortReasonReachesClient(t *testing.T) {
	xor := divergent("xor")
	// Large buffers: the client's writes never wait for the server, so
	// they are on their way when the server aborts.
	ap := startAppPool(t, 2, func(cfg *Config) { cfg.Window = 16 << 20 }, appOptions{
		checkpoint: func(consumed, since int64) bool { return consumed >= 100_000 && consumed-since < 100_000 },
		output: func(member string, restored bool, p []byte) []byte {
			if restored {
				time.Sleep(time.Millisecond) // the client's input piles up meanwhile
			}
			return xor(member, restored, p)
		},
	})
	defer ap.close()
	for i := 0; i < 20; i++ {
		mc := ap.dial(t, &Dialer{Logger: testLogger(t), Retention: 32 << 20}, "m0")
		c := net.Conn(mc)
		var moved atomic.Bool
		res := echoTransfer(c, 32<<20, 18, func(got int64) {
			if got >= 200_000 && moved.CompareAndSwap(false, true) {
				require.NoError(t, mc.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m1")))
			}
		})
		require.Equal(t, digestOf(res.ReceivedN, 18), res.Received)
		require.ErrorIs(t, res.ReadErr, ErrSessionLost)
		require.ErrorIs(t, res.ReadErr, ErrDiverged, "run %d", i)
		require.NoError(t, c.Close())
		waitSessionEnd(t, c)
	}
}

// TestLateHandoverRequest: a handover request that reaches the session's
// member after the member that sent it gave up (a slow control path) must
// not take the session away: the move failed, the client resumed where it
// was, and the session must go on working.
func TestLateHandoverRequest(t *testing.T) {
	const hs = 500 * time.Millisecond
	tp := startAppPool(t, 2, func(cfg *Config) { cfg.HandshakeTimeout = hs }, appOptions{})
	defer tp.close()
	m0 := tp.member("m0")
	// m0 answers the first handover request late.
	delayFirstControl(t, m0, pool.KindHandover, 2*hs)

	d := &Dialer{Logger: testLogger(t), HandshakeTimeout: 4 * hs, ResumeTimeout: 5 * time.Second}
	es := tp.openEcho(t, d, "m0", 19, 64<<10)
	mc, id := es.c, es.c.SessionID()

	err := mc.Migrate(ctxTimeout(t, 10*time.Second), tp.member("m1").Addr().String())
	t.Logf("migrate: %v", err)
	// m1 gives up waiting for m0: the move fails and the session stays, or
	// the client's next try within the move's time gets m0's answer, kept
	// until settled, and the move succeeds. Either way nothing is lost.
	if err != nil {
		require.ErrorIs(t, err, ErrMoveFailed, "m1 gave up waiting for m0")
	}
	time.Sleep(3 * hs) // the late request is handled meanwhile
	require.NoError(t, es.round(64<<10, 10*time.Second), "the session goes on")
	t.Logf("served by %v, now on %s", tp.servedBy(id), mc.MemberName())
	tp.finishSession(t, es)
	require.Empty(t, tp.errors())
}

// TestUploadWhileResponseUnread: the application writes a response larger
// than the client's window, then reads an upload (checkpointing as it goes)
// that the client sends before it reads the response. The checkpoints
// cannot become durable until the client reads, so they must not hold the
// client's writes back: with a TCP connection of the same buffer sizes the
// upload goes through, and a Write never blocks forever because of
// checkpoints.
func TestUploadWhileResponseUnread(t *testing.T) {
	const window, response, upload = 64 << 10, 1 << 20, 4 << 20
	ap := startAppPool(t, 2, nil, appOptions{
		start:  bytes.Repeat([]byte{'r'}, response),
		output: func(string, bool, []byte) []byte { return nil },
	})
	defer ap.close()
	d := &Dialer{Logger: testLogger(t), Window: window, Retention: 256 << 10}
	c, err := d.Dial("tcp", ap.addr("m0"))
	require.NoError(t, err)
	id := c.(*Conn).SessionID()
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(5*time.Second)))
	k, err := io.Copy(c, newPattern(upload, 20))
	if err != nil {
		t.Logf("client: %s", c.(*Conn).debugState())
		t.Logf("server: %s", ap.serverConn(id).debugState())
	}
	require.NoError(t, err, "the upload goes through after %d bytes", k)
	require.NoError(t, c.(*Conn).CloseWrite())
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, response, len(got))
	require.True(t, bytes.Equal(bytes.Repeat([]byte{'r'}, response), got), "the response arrives intact")
	require.Equal(t, digestOf(upload, 20), ap.closeSession(t, c))
	require.Empty(t, ap.errors())
}

// TestHandoverOfMovedSessionRedirects: a member asked for a session that
// already left it answers where the session went, and the asking member
// turns that into a redirect its client can follow.
func TestHandoverOfMovedSessionRedirects(t *testing.T) {
	tp := startAppPool(t, 3, nil, appOptions{})
	defer tp.close()
	m0, m1 := tp.member("m0"), tp.member("m1")
	mc := tp.dial(t, nil, "m0")
	require.NoError(t, mc.Migrate(ctxTimeout(t, 10*time.Second), m1.Addr().String()))
	require.Equal(t, "m1", mc.MemberName())

	// m2 asks m0, where the session was, for it, with the client's proof;
	// without one, m0 does not say where the session went.
	rpc, err := transport.NewClient(transport.Config{NodeName: "m2", Key: testPoolKey})
	require.NoError(t, err)
	defer rpc.Close()
	req := pool.HandoverRequest{Session: mc.id, ClientNonce: auth.Nonce(), ServerNonce: auth.Nonce(), Epoch: 1, Origin: "m0"}
	var rep struct{}
	var re *transport.RemoteError
	err = rpc.Call(ctxTimeout(t, 5*time.Second), m0.member.ControlAddr(), pool.KindHandover, req, &rep)
	require.ErrorAs(t, err, &re)
	require.Equal(t, pool.CodeBadProof, re.Code, "a request without the client's proof")
	rs := auth.Resume{Session: req.Session, ClientNonce: req.ClientNonce, ServerNonce: req.ServerNonce, Epoch: req.Epoch, Origin: req.Origin}
	req.MAC = rs.ClientMAC(mc.secret, wire.Proof{Positions: req.Positions(), Known: req.Known}.Fields())
	err = rpc.Call(ctxTimeout(t, 5*time.Second), m0.member.ControlAddr(), pool.KindHandover, req, &rep)
	require.ErrorAs(t, err, &re)
	t.Logf("refusal: %+v", *re)
	require.Equal(t, pool.CodeMoved, re.Code)
	require.Equal(t, "m1 "+m1.Addr().String(), re.Message)

	closeHonest(t, mc)
}

// delayConn delays its second Write (a resume's PROOF) by d.
type delayConn struct {
	net.Conn
	d      time.Duration
	writes int
}

func (c *delayConn) Write(p []byte) (int, error) {
	c.writes++
	if c.writes == 2 {
		time.Sleep(c.d)
	}
	return c.Conn.Write(p)
}

// TestResumeRacingHandover: a move whose handover is slow fails on the
// client, which resumes on its member; the member hands the session over
// (the successor still waits for it) in the middle of that resume. The
// client must be sent to the successor, which holds the session, rather
// than told that the session is unknown.
func TestResumeRacingHandover(t *testing.T) {
	const timeout = 600 * time.Millisecond // the client's handshake timeout
	ap := startAppPool(t, 2, nil, appOptions{})
	defer ap.close()
	m0 := ap.member("m0")
	delayFirstControl(t, m0, pool.KindHandover, timeout*3/2) // the client gives up the move meanwhile
	var armed atomic.Bool
	d := &Dialer{Logger: testLogger(t), HandshakeTimeout: timeout,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			var nd net.Dialer
			nc, err := nd.DialContext(ctx, network, address)
			if err == nil && address == m0.Addr().String() && armed.CompareAndSwap(true, false) {
				// The resume on m0 after the failed move: its PROOF goes
				// out once m0 has handed the session over.
				nc = &delayConn{Conn: nc, d: timeout * 3 / 4}
			}
			return nc, err
		}}
	es := ap.openEcho(t, d, "m0", 28, 64<<10)
	mc, id := es.c, es.c.SessionID()

	armed.Store(true)
	err := mc.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m1"))
	t.Logf("migrate: %v", err)
	require.NoError(t, es.round(64<<10, 10*time.Second), "the session goes on wherever it is")
	t.Logf("served by %v, now on %s", ap.servedBy(id), mc.MemberName())
	ap.finishSession(t, es)
	require.Empty(t, ap.errors())
}

// TestShortRegenerationFails: restored, the application writes one byte
// less than the client already received, and then waits for input, like
// the client, which waits for its answer. Everything it could regenerate
// from is replayed, so the output can never catch up: the session must fail
// with ErrDiverged rather than hang.
func TestShortRegenerationFails(t *testing.T) {
	ap := startAppPool(t, 2, nil, appOptions{
		checkpoint: checkpointOnceAt(100_000),
		output:     divergent("missing"),
	})
	defer ap.close()
	mc := ap.openEcho(t, nil, "m0", 29, 150_000).c
	c := net.Conn(mc)
	require.NoError(t, mc.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m1")))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	k, err := c.Read(make([]byte, 1024))
	require.Zero(t, k)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		sc := serverEnd(ap.member("m1"), mc.SessionID())
		if sc != nil {
			t.Logf("server: %s", sc.debugState())
		}
	}
	require.ErrorIs(t, err, ErrDiverged)
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
}

// declineFirstMove is a policy that stays put the first time the server
// asks, and obeys after that.
type declineFirstMove struct {
	DefaultPolicy
	asked atomic.Int32
}

func (p *declineFirstMove) MoveRequested(addr string, r MoveReason) string {
	if p.asked.Add(1) == 1 {
		return ""
	}
	return addr
}

// TestServerMigrateAgainAfterDeclined: the client's policy declines the
// server's first request to move; the server's next request must reach the
// client again (a new MOVE), and the session moves.
func TestServerMigrateAgainAfterDeclined(t *testing.T) {
	ap := startAppPool(t, 2, nil, appOptions{})
	defer ap.close()
	policy := &declineFirstMove{}
	es := ap.openEcho(t, &Dialer{Logger: testLogger(t), Policy: policy}, "m0", 41, 64<<10)
	mc, id := es.c, es.c.SessionID()
	sc := serverEnd(ap.member("m0"), id)
	require.NotNil(t, sc)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := sc.Migrate(ctx, ap.addr("m1"))
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "the client declined")
	require.Equal(t, int32(1), policy.asked.Load())
	require.NoError(t, es.round(64<<10, 10*time.Second))
	require.Equal(t, "m0", mc.MemberName())

	require.NoError(t, sc.Migrate(ctxTimeout(t, 10*time.Second), ap.addr("m1")), "asked again, the client moves")
	require.Equal(t, int32(2), policy.asked.Load())
	require.NoError(t, es.round(64<<10, 10*time.Second))
	require.Equal(t, "m1", mc.MemberName())
	require.Equal(t, []string{"m0", "m1"}, ap.servedBy(id))

	ap.finishSession(t, es)
	require.Empty(t, ap.errors())
}
