package mtcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/transport"

	"github.com/stretchr/testify/require"
)

// refuseCopies makes a member refuse the checkpoint copies other members
// send it (as one whose ReplicaMemory is full does) until the returned
// function restores its handler.
func refuseCopies(t testing.TB, ln *Listener) (restore func()) {
	return hookControl(t, ln, pool.KindReplicate, func(transport.Handler) transport.Handler {
		return func(context.Context, string, func(any) error) (any, error) {
			return nil, &pool.ControlError{Code: "full", Message: "replica memory full"}
		}
	})
}

// TestCrashAfterReplicaRefusedCopies: the only other member of a pool
// refuses the copies of a session's newer checkpoints. Those checkpoints are
// not durable, so the client keeps its input from the last one that has its
// copy; when the session's member crashes, the other member restores that
// one and the client replays the rest: nothing is lost.
func TestCrashAfterReplicaRefusedCopies(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	d := &Dialer{Logger: testLogger(t), ResumeTimeout: 8 * time.Second}
	c, err := d.Dial("tcp", ap.addr("m0"))
	require.NoError(t, err)
	waitMembers(t, c, 2)
	id := c.(*Conn).SessionID()
	es := newEchoSession(c, 11)
	for range 4 {
		require.NoError(t, es.round(64<<10, 10*time.Second))
	}
	sc := serverEnd(ap.member("m0"), id)
	require.Eventually(t, func() bool { return sc.Status().CrashSafe }, 5*time.Second, 10*time.Millisecond,
		"the first checkpoints are copied to m1")

	refuseCopies(t, ap.member("m1"))
	for range 8 {
		require.NoError(t, es.round(128<<10, 10*time.Second))
	}
	require.True(t, sc.Status().CrashSafe, "the client still holds the input after the copied checkpoint")

	ap.member("m0").crash()
	require.NoError(t, es.round(64<<10, 15*time.Second), "the session goes on at m1 after the crash")
	require.Equal(t, "m1", c.(*Conn).MemberName())
	ap.finishSession(t, es)
}

// warnings is a slog.Handler that keeps the messages of warnings.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) count(prefix string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := 0
	for _, m := range w.msgs {
		if strings.HasPrefix(m, prefix) {
			k++
		}
	}
	return k
}

// TestSessionWithoutCopiesSaysSo: a session whose checkpoints cannot get
// their copies is never counted durable; once its client's retention fills
// up, its writes go on, and the session, the listener's status and a
// warning say that a crash would lose it. When copies can be had again, it
// is crash-safe again.
func TestSessionWithoutCopiesSaysSo(t *testing.T) {
	warn := &warnings{}
	ap := startAppPool(t, 2, func(c *Config) {
		c.Replicas = 1
		if c.NodeName == "m0" {
			c.Logger = slog.New(warn)
		}
	}, appOptions{})
	defer ap.close()
	restore := refuseCopies(t, ap.member("m1"))
	d := &Dialer{Logger: testLogger(t), Retention: 64 << 10}
	c, err := d.Dial("tcp", ap.addr("m0"))
	require.NoError(t, err)
	waitMembers(t, c, 2)
	es := newEchoSession(c, 12)
	sc := serverEnd(ap.member("m0"), c.(*Conn).SessionID())
	require.NoError(t, es.round(16<<10, 10*time.Second))
	require.False(t, sc.Status().CrashSafe, "no copy was made")

	for range 16 { // 16 times the client's retention: its writes never block for good
		require.NoError(t, es.round(64<<10, 10*time.Second))
	}
	st := sc.Status()
	require.False(t, st.CrashSafe)
	require.True(t, st.AtRisk)
	require.Equal(t, 1, ap.member("m0").Status().AtRisk)
	require.Equal(t, 1, warn.count("mtcp: session is not crash-safe"), "one warning")

	restore()
	require.Eventually(t, func() bool {
		if err := es.round(1<<10, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		return sc.Status().CrashSafe
	}, 15*time.Second, 50*time.Millisecond, "copies are made again")
	require.False(t, sc.Status().AtRisk)
	require.Equal(t, 0, ap.member("m0").Status().AtRisk)
	ap.finishSession(t, es)
}

// TestCrashBeforeFirstCheckpoint: a new session's member crashes before its
// application even accepted the session. The session's implicit checkpoint
// (its start) was copied before the client was welcomed, and the client
// keeps its input from there: the other member restores the session from
// its start and its application serves it, nothing lost.
func TestCrashBeforeFirstCheckpoint(t *testing.T) {
	never := make(chan struct{})
	ap := startAppPool(t, 2, func(c *Config) { c.Replicas = 1 }, appOptions{
		acceptGate: func(member string) <-chan struct{} {
			if member == "m0" {
				return never
			}
			return nil
		},
	})
	defer ap.close()
	defer close(never) // before the pool closes: its accept loop waits for it
	c, err := (&Dialer{Logger: testLogger(t), ResumeTimeout: 10 * time.Second}).Dial("tcp", ap.addr("m0"))
	require.NoError(t, err)
	waitMembers(t, c, 2)
	es := newEchoSession(c, 31)
	sent := make([]byte, 256<<10)
	_, _ = io.ReadFull(es.src, sent)
	es.sent.Write(sent)
	_, err = c.Write(sent) // nobody reads it on m0
	require.NoError(t, err)

	ap.member("m0").crash()
	back := make([]byte, len(sent))
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.ReadFull(c, back)
	require.NoError(t, err, "m1 restored the session from its start and echoes")
	require.Equal(t, sent, back)
	es.recv.Write(back)
	_ = c.SetReadDeadline(time.Time{})
	require.Equal(t, "m1", c.(*Conn).MemberName())
	require.NoError(t, es.round(64<<10, 10*time.Second))
	ap.finishSession(t, es)
}

// TestSessionWithoutCopiesFinishes: a session whose checkpoints never get
// their copies does not keep its client waiting at its end: once the
// application has read all the client sent, up to its end, the client's
// last bytes are released, and the client's session finishes although the
// server's application keeps its end open.
func TestSessionWithoutCopiesFinishes(t *testing.T) {
	hold := make(chan struct{})
	var members []*Listener
	var wg sync.WaitGroup
	for i := range 2 {
		cfg := &Config{NodeName: fmt.Sprintf("m%d", i), Gossip: "127.0.0.1:0", PoolKey: testPoolKey,
			PoolProfile: pool.ProfileLocal, Logger: testLogger(t), Replicas: 1}
		if i > 0 {
			cfg.Join = []string{members[0].GossipAddr()}
		}
		ln, err := Listen("tcp", "127.0.0.1:0", cfg)
		require.NoError(t, err)
		members = append(members, ln)
	}
	defer func() {
		close(hold)
		for _, ln := range members {
			ln.Close()
		}
		wg.Wait()
	}()
	refuseCopies(t, members[1])
	wg.Add(1)
	go func() { // the application: reads to the end, ends its output, stays
		defer wg.Done()
		nc, err := members[0].Accept()
		if err != nil {
			return
		}
		c := nc.(*Conn)
		defer c.Close()
		_ = c.Checkpoint(nil)
		_, _ = io.Copy(io.Discard, c)
		_ = c.CloseWrite()
		<-hold
	}()
	require.Eventually(t, func() bool { return len(members[0].Members()) == 2 }, 10*time.Second, 10*time.Millisecond)
	c, err := (&Dialer{Logger: testLogger(t)}).Dial("tcp", members[0].Addr().String())
	require.NoError(t, err)
	_, err = c.Write(make([]byte, 256<<10))
	require.NoError(t, err)
	require.NoError(t, c.(*Conn).CloseWrite())
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c)
	require.NoError(t, err, "the server's end arrives")
	require.NoError(t, c.Close())
	select {
	case <-c.(*Conn).endedCh:
	case <-time.After(5 * time.Second):
		t.Fatalf("the client's session did not finish: %s", c.(*Conn).debugState())
	}
	require.NoError(t, c.(*Conn).Err())
}

// holdCopies makes every member of the pool hold the checkpoint
// copies it is sent until the returned function is called.
func holdCopies(t testing.TB, members []*Listener) (release func()) {
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
	ap := startAppPool(t, 3, func(c *Config) { c.Replicas = 1 }, appOptions{
		checkpoint: func(int64, int64) bool { return false },
	})
	defer ap.close()
	release := holdCopies(t, ap.members)
	defer release()
	mc := ap.dial(t, nil, "m0")
	c := net.Conn(mc)
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

// TestFailoverAfterCrash: the member serving a stateful session crashes in
// the middle of an echo; the client resumes on another member, which
// restores the session from the replicated checkpoint; nothing is lost.
func TestFailoverAfterCrash(t *testing.T) {
	tp := startPool(t, 3, func(c *Config) { c.Replicas = 1 })
	defer tp.close()
	mc := tp.dial(t, nil, "m0")
	c := net.Conn(mc)

	const n = 12 << 20
	var crash sync.Once
	var crashAt time.Time
	res := echoTransfer(c, n, 31, func(got int64) {
		if got >= n/3 {
			crash.Do(func() {
				crashAt = time.Now()
				tp.member("m0").crash()
			})
		}
	})
	requireTransferOK(t, res, n, 31, tp.closeSession(t, c))
	require.NotEqual(t, "m0", mc.MemberName())
	served := tp.apps.servedBy(mc.SessionID())
	require.Equal(t, "m0", served[0])
	require.Len(t, served, 2)
	for _, err := range tp.apps.errors() {
		require.True(t, errors.Is(err, ErrSessionLost), "only the crashed member's application fails: %v", err)
	}
	t.Logf("crash at %v; served by %v", crashAt.Format("15:04:05.000"), served)
}

// TestCloseWhereNoCopyCanBeMade: a pool of two members, one drains; the
// session moves to the other, which is left with no member to hold copies
// of its checkpoints, so none of them becomes durable. The session still
// closes at once and cleanly: once the client has closed and the
// application read all of its input, nothing is left to restore, and the
// client's last bytes are released without a durable checkpoint.
func TestCloseWhereNoCopyCanBeMade(t *testing.T) {
	tp := startPool(t, 2, func(c *Config) { c.Replicas = 1 })
	defer tp.close()
	mc := tp.dial(t, nil, "m0")
	_, err := mc.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(mc, buf)
	require.NoError(t, err)
	require.NoError(t, tp.member("m0").Drain(ctxTimeout(t, 10*time.Second)))
	require.Equal(t, "m1", mc.MemberName())
	_, err = mc.Write([]byte("pong"))
	require.NoError(t, err)
	_, err = io.ReadFull(mc, buf)
	require.NoError(t, err)
	require.Equal(t, "pong", string(buf))

	start := time.Now()
	require.NoError(t, mc.Close())
	waitSessionEnd(t, mc)
	require.NoError(t, mc.Err(), "the session finished cleanly")
	t.Logf("ended %v after Close", time.Since(start))
}
