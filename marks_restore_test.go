package mtcp

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/testapp"
	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/snapshot"
	"github.com/migratory/mtcp/transport"
)

// refuseCopiesFrom makes every member hold the checkpoint copies
// that member from sends them, and then fail them unstored: from's
// checkpoints stop becoming durable. Others replicate as usual.
func refuseCopiesFrom(t testing.TB, members []*Listener, from string) {
	stop := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(stop) }) })
	for _, ln := range members {
		hookControl(t, ln, pool.KindReplicate, func(h transport.Handler) transport.Handler {
			return func(ctx context.Context, sender string, decode func(any) error) (any, error) {
				if sender == from {
					select {
					case <-ctx.Done():
					case <-stop:
					}
					return nil, errors.New("copy refused by the test")
				}
				return h(ctx, sender, decode)
			}
		})
	}
}

// TestMarksAfterARestoreAtAnOlderCheckpoint: the client heard of
// checkpoints newer than the one the replicas hold when its member
// crashes, so the member that takes the session over restores an older
// one and numbers its own checkpoints from it again. The client must
// record the new member's marks all the same (it keys them by output
// position, not by number): when those checkpoints become durable and the
// client frees its input before them, they are the only ones it can
// resume from, and a move must find them checkable.
func TestMarksAfterARestoreAtAnOlderCheckpoint(t *testing.T) {
	var skip atomic.Bool
	ap := startAppPool(t, 5, func(c *Config) { c.Replicas = 1 }, appOptions{
		output:     quietEcho,
		checkpoint: func(int64, int64) bool { return !skip.Load() },
	})
	defer ap.close()
	lt, fc := openLoud(t, ap, 21)
	defer lt.c.Close() // if the test fails
	mc, id := lt.c, lt.c.SessionID()
	sc := serverEnd(ap.member("m0"), id)
	waitCheckpointsDurable(t, sc)
	sc.mu.Lock()
	restorable := sc.server.durable.Seq
	sc.mu.Unlock()

	// m0's newer checkpoints get no copies: the replicas keep the durable one.
	refuseCopiesFrom(t, ap.members, "m0")
	for i := 0; i < 20; i++ {
		lt.quiet(t) // checkpoints without output
	}
	require.Eventually(t, func() bool {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		return sc.st.Consumed() == sc.st.Received()
	}, 5*time.Second, time.Millisecond)
	// A resume announces the newest mark again; the client reads it before
	// the next echo.
	fc.breakLink()
	lt.loud(t, 16)
	sc.mu.Lock()
	newest := sc.server.ckpts[len(sc.server.ckpts)-1].Seq
	require.Equal(t, restorable, sc.server.durable.Seq, "nothing newer became durable")
	sc.mu.Unlock()
	mc.mu.Lock()
	heard := mc.client.marks[len(mc.client.marks)-1].seq
	mc.mu.Unlock()
	require.Greater(t, heard, restorable+5, "the client heard of checkpoints newer than the restorable one")
	t.Logf("replicas hold checkpoint %d; the client heard of %d; the newest is %d", restorable, heard, newest)

	ap.member("m0").crash()
	lt.loud(t, 16) // through the failover
	taker := mc.MemberName()
	require.NotEqual(t, "m0", taker)
	nc := serverEnd(ap.member(taker), id)
	require.NotNil(t, nc)
	// A few checkpoints with output on the new member, numbered from the
	// restored one: fewer than the client heard of from m0.
	for i := 0; i < 3; i++ {
		lt.loud(t, 512)
	}
	waitCheckpointsDurable(t, nc)
	nc.mu.Lock()
	durable := nc.server.durable
	nc.mu.Unlock()
	require.LessOrEqual(t, durable.Seq, heard, "the new member's checkpoints reuse numbers the client knows")
	require.Greater(t, durable.InPos, uint64(4096), "the client freed the input before the new member's checkpoint")

	// Output past the newest checkpoint: a move restores the newest
	// checkpoint the client can check.
	skip.Store(true)
	lt.loud(t, 16)
	skip.Store(false)
	to := ""
	for _, ln := range ap.members {
		if name := ln.NodeName(); name != "m0" && name != taker {
			to = name
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, retryUnknownMember(func() error { return mc.Migrate(ctx, ap.addr(to)) }),
		"the client knows %s", mc.marksForLog())
	lt.loud(t, 64<<10)
	lt.finish(t, ap)
	require.Equal(t, []string{"m0", taker, to}, ap.servedBy(id))
	for _, err := range ap.errors() {
		require.ErrorIs(t, err, ErrSessionLost, "only the crashed member's application fails")
	}
}

// TestDownloadFailsOverFromAnOlderCheckpoint: a session that writes
// without reading (a download) takes all its checkpoints at the same input
// position. Its member's copies stop reaching the replicas while the
// client goes on reading and hearing of newer checkpoints; then the member
// crashes. The replicas hold an older checkpoint than the client heard of:
// the client must still be able to check it (it keeps every checkpoint it
// may be restored from, not only the newest), and the download completes.
func TestDownloadFailsOverFromAnOlderCheckpoint(t *testing.T) {
	const request, reply = 1000, 4 << 20
	// The application writes at most 256 KiB ahead of what the client
	// acknowledged: no copy made before m0's stop is far ahead.
	ap := startAppPool(t, 5, func(c *Config) { c.Replicas, c.Retention = 1, 256<<10 }, appOptions{app: replyApp(reply)})
	defer ap.close()
	// A small window: most of the reply is still to come when m0 crashes.
	mc := ap.dial(t, &Dialer{Logger: testLogger(t), Window: 256 << 10}, "m0")
	c := net.Conn(mc)
	defer c.Close() // if the test fails
	id := mc.SessionID()
	sent := sha256.New()
	_, err := io.Copy(c, io.TeeReader(newPattern(request, 9), sent))
	require.NoError(t, err)
	require.NoError(t, mc.CloseWrite())

	// The client reads until a checkpoint of the reply is durable (one the
	// client has all the output before, with its copy), then m0's copies
	// stop and the client reads on.
	got := sha256.New()
	read := int64(0)
	sc := serverEnd(ap.member("m0"), id)
	for {
		_, err = io.CopyN(got, c, 64<<10)
		require.NoError(t, err)
		read += 64 << 10
		durableReply := func() bool {
			sc.mu.Lock()
			defer sc.mu.Unlock()
			return sc.server.durable != nil && sc.server.durable.OutPos > 0
		}
		deadline := time.Now().Add(200 * time.Millisecond) // copies take a while on a busy machine
		for !durableReply() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if durableReply() {
			break
		}
		require.Less(t, read, int64(reply/2), "a checkpoint of the reply becomes durable")
	}
	refuseCopiesFrom(t, ap.members, "m0")
	// Copies already made may still make checkpoints ahead durable: the
	// client reads on until it heard of several newer than the durable one.
	var durable *snapshot.Record
	var heard markDigest
	for {
		_, err = io.CopyN(got, c, 64<<10)
		require.NoError(t, err)
		read += 64 << 10
		sc.mu.Lock()
		durable = sc.server.durable
		sc.mu.Unlock()
		mc.mu.Lock()
		heard = mc.client.marks[len(mc.client.marks)-1]
		mc.mu.Unlock()
		if heard.at.Pos >= durable.OutPos+256<<10 {
			break
		}
		require.Less(t, read, int64(3*reply/4), "the client hears of checkpoints newer than the durable one")
	}
	t.Logf("durable checkpoint %d at %d; the client heard of %d at %d", durable.Seq, durable.OutPos, heard.seq, heard.at.Pos)

	ap.member("m0").crash()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	k, err := io.Copy(got, c)
	require.NoError(t, err, "the client knows %s", mc.marksForLog())
	require.Equal(t, reply-read, k)
	require.Equal(t, testapp.BannerDigest(reply), got.Sum(nil), "the reply arrives intact")
	ap.waitEnded(t, c)
	require.NoError(t, mc.Err())
	require.Equal(t, sent.Sum(nil), ap.finalDigest(id), "the application read exactly the request")
	require.NotEqual(t, "m0", mc.MemberName())
	for _, err := range ap.errors() {
		require.ErrorIs(t, err, ErrSessionLost, "only the crashed member's application fails")
	}
}
