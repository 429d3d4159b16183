package mtcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/testapp"
	"github.com/migratory/mtcp/internal/transfer"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/snapshot"
	"github.com/migratory/mtcp/transport"
)

// frameCounter dials a client's links and counts the frames the client
// reads from them, by type.
type frameCounter struct {
	mu     sync.Mutex
	counts map[wire.Type]int
	links  []net.Conn
}

func newFrameCounter() *frameCounter { return &frameCounter{counts: map[wire.Type]int{}} }

func (fc *frameCounter) dial(ctx context.Context, network, address string) (net.Conn, error) {
	nc, err := (&net.Dialer{}).DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	fc.mu.Lock()
	fc.links = append(fc.links, nc)
	fc.mu.Unlock()
	return &countingConn{Conn: nc, fc: fc}, nil
}

// count returns how many frames of type typ the client read so far.
func (fc *frameCounter) count(typ wire.Type) int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.counts[typ]
}

// breakLink closes the newest link under the client: it resumes.
func (fc *frameCounter) breakLink() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	_ = fc.links[len(fc.links)-1].Close()
}

// countingConn parses the frame headers in what it reads.
type countingConn struct {
	net.Conn
	fc   *frameCounter
	hdr  [8]byte
	nh   int
	body int
}

func (cc *countingConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if cc.body > 0 {
			k := min(len(b), cc.body)
			cc.body -= k
			b = b[k:]
			continue
		}
		k := copy(cc.hdr[cc.nh:], b)
		cc.nh += k
		b = b[k:]
		if cc.nh == len(cc.hdr) {
			cc.nh, cc.body = 0, int(binary.BigEndian.Uint32(cc.hdr[4:]))
			cc.fc.mu.Lock()
			cc.fc.counts[wire.Type(cc.hdr[0])]++
			cc.fc.mu.Unlock()
		}
	}
	return n, err
}

// quietEcho is the output of an application that echoes every input byte
// but zeros: input made of zeros is consumed and checkpointed without
// output (an upload).
func quietEcho(_ string, _ bool, p []byte) []byte {
	return bytes.ReplaceAll(p, []byte{0}, nil)
}

// loudTraffic drives a quietEcho session: loud rounds are echoed (no byte
// is zero), quiet ones are not; it keeps the digests of both directions.
type loudTraffic struct {
	c          *Conn
	src        *transfer.Pattern
	sent, echo hash.Hash // all input; the echoed part
	want       hash.Hash // what the echo must be
}

func newLoudTraffic(c *Conn, seed uint64) *loudTraffic {
	return &loudTraffic{c: c, src: newPattern(1<<62, seed), sent: sha256.New(), echo: sha256.New(), want: sha256.New()}
}

// openLoud opens a session on m0 of ap, whose links count the frames they
// carry, and returns a loudTraffic on it after a first loud round of 4 KiB.
func openLoud(t testing.TB, ap *appPool, seed uint64) (*loudTraffic, *frameCounter) {
	t.Helper()
	fc := newFrameCounter()
	lt := newLoudTraffic(ap.dial(t, &Dialer{Logger: testLogger(t), DialFunc: fc.dial}, "m0"), seed)
	lt.loud(t, 4096)
	return lt, fc
}

// finish ends the session: CloseWrite, the server's EOF with nothing
// before it; then it checks that the application read exactly what was
// sent and the client exactly the echo.
func (lt *loudTraffic) finish(t testing.TB, ap *appPool) {
	t.Helper()
	require.NoError(t, lt.c.CloseWrite())
	k, err := io.Copy(io.Discard, lt.c)
	require.NoError(t, err)
	require.Zero(t, k)
	ap.waitEnded(t, lt.c)
	id := lt.c.SessionID()
	require.Eventually(t, func() bool { return ap.finalDigest(id) != nil }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, lt.sent.Sum(nil), ap.finalDigest(id), "the application read exactly what the client sent")
	require.Equal(t, lt.want.Sum(nil), lt.echo.Sum(nil), "the client read exactly the echo")
}

// loud writes n nonzero bytes and reads them back.
func (lt *loudTraffic) loud(t testing.TB, n int) {
	t.Helper()
	out := make([]byte, n)
	_, _ = io.ReadFull(lt.src, out)
	for i := range out {
		out[i] |= 1
	}
	lt.sent.Write(out)
	lt.want.Write(out)
	_ = lt.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer lt.c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := lt.c.Write(out)
		errc <- err
	}()
	in := make([]byte, n)
	_, err := io.ReadFull(lt.c, in)
	require.NoError(t, err)
	require.NoError(t, <-errc)
	lt.echo.Write(in)
	require.Equal(t, out, in, "the echo")
}

// quiet writes one zero byte, which the application consumes silently.
func (lt *loudTraffic) quiet(t testing.TB) {
	t.Helper()
	lt.sent.Write([]byte{0})
	_, err := lt.c.Write([]byte{0})
	require.NoError(t, err)
}

// TestCheckpointsWithoutOutputKeepOneMark: an application that consumes
// input and checkpoints after every read without writing (an upload) does
// not pile up checkpoint marks: after 2,000 such rounds the server holds
// one mark and the client remembers one, which covers the input of the
// newest checkpoint (the server announces the mark again as its checkpoint
// there covers more input, at most once per checkpoint), and a resume
// announces it once again. Moves still carry the session byte for byte.
func TestCheckpointsWithoutOutputKeepOneMark(t *testing.T) {
	reads := make(chan int64, 16)
	ap := startAppPool(t, 3, func(c *Config) { c.Replicas = 1 }, appOptions{
		output: quietEcho,
		afterRead: func(member string, _ *Conn, consumed int64) {
			if member == "m0" {
				select {
				case reads <- consumed:
				default: // nobody waits for these reads
				}
			}
		},
	})
	defer ap.close()
	lt, fc := openLoud(t, ap, 11)
	defer lt.c.Close() // if the test fails
	mc, id := lt.c, lt.c.SessionID()
	var consumed int64
	for consumed < 4096 {
		select {
		case consumed = <-reads:
		case <-time.After(10 * time.Second):
			t.Fatal("the application did not read")
		}
	}

	marksBefore := fc.count(wire.TypeMark)
	const rounds = 2000
	for i := 1; i <= rounds; i++ {
		lt.quiet(t)
		select {
		case got := <-reads:
			require.Equal(t, consumed+int64(i), got, "one read per round")
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the application did not read", i)
		}
	}
	sc := serverEnd(ap.member("m0"), id)
	sc.mu.Lock()
	held := sc.st.Marks()
	sc.mu.Unlock()
	// The client knows how far its newest mark covers its input: as far as
	// the server's newest checkpoint, so that a Migrate need not wait.
	require.Eventually(t, func() bool {
		sc.mu.Lock()
		newest := sc.server.ckpts[len(sc.server.ckpts)-1]
		sc.mu.Unlock()
		mc.mu.Lock()
		defer mc.mu.Unlock()
		marks := mc.client.marks
		return len(marks) > 0 && marks[len(marks)-1].in == newest.InPos && mc.client.resumableLocked(mc)
	}, 5*time.Second, 5*time.Millisecond, "the client's newest mark covers the input of the server's newest checkpoint")
	// The client takes frames off its link as its application reads: a
	// loud round makes it read every frame sent before the echo (and
	// perhaps the mark of the new output).
	lt.loud(t, 16)
	announced := fc.count(wire.TypeMark) - marksBefore
	// The client forgets a mark once the server's acknowledgement frees the
	// input its checkpoint needs; that acknowledgement follows the copies
	// of the newest checkpoint, so it may come after the echo.
	remembered := 0
	require.Eventually(t, func() bool {
		mc.mu.Lock()
		defer mc.mu.Unlock()
		remembered = len(mc.client.marks)
		return remembered <= 2
	}, 5*time.Second, 5*time.Millisecond, "marks the client remembers")
	t.Logf("after %d checkpoints without output: %d marks held by the server; then %d MARK frames, %d marks held by the client",
		rounds, held, announced, remembered)
	require.LessOrEqual(t, announced, rounds+2, "MARK frames during the rounds (and for the new output): at most one per checkpoint")
	require.LessOrEqual(t, held, 1, "marks the server holds")

	// Once the echo's checkpoint is durable (its copies made, its output
	// acknowledged), the server keeps one checkpoint and its mark.
	require.Eventually(t, func() bool {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		return sc.st.Marks() <= 1
	}, 5*time.Second, 5*time.Millisecond, "marks the server holds once the echo's checkpoint is durable")

	// The link breaks; the client resumes at m0, which announces its marks again.
	marksBefore = fc.count(wire.TypeMark)
	fc.breakLink()
	lt.loud(t, 4096)
	resent := fc.count(wire.TypeMark) - marksBefore
	t.Logf("after a resume: %d MARK frames", resent)
	// The mark again, and one for each checkpoint of the new output: the
	// application checkpoints after each read, and 4 KiB may take a few
	// reads. Not one per checkpoint ever made (2,000 before marks were
	// bounded).
	require.LessOrEqual(t, resent, 4, "MARK frames after the resume")
	require.Equal(t, "m0", mc.MemberName())

	for _, to := range []string{"m1", "m2"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(t, retryUnknownMember(func() error { return mc.Migrate(ctx, ap.addr(to)) }))
		cancel()
		for i := 0; i < 10; i++ {
			lt.quiet(t)
		}
		lt.loud(t, 64<<10)
	}
	lt.finish(t, ap)
	require.Equal(t, []string{"m0", "m1", "m2"}, ap.servedBy(id))
	require.Empty(t, ap.errors())
}

// TestMarksCappedLikeCheckpoints: the client reads nothing, so the output
// of an application that writes and checkpoints after every read piles up
// beyond the client's window: checkpoints wait for the client's
// acknowledgement, and so do their marks. The server keeps at most
// maxCheckpoints of them (and the durable one), and the marks of the
// dropped checkpoints go with them.
func TestMarksCappedLikeCheckpoints(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	c, err := (&Dialer{Logger: testLogger(t), Window: minBufferSize}).Dial("tcp", ap.addr("m0"))
	require.NoError(t, err)
	defer c.Close() // if the test fails
	mc := c.(*Conn)
	id := mc.SessionID()
	const rounds, size = 400, 100
	src := newPattern(rounds*size, 3)
	sent := sha256.New()
	for i := 0; i < rounds; i++ {
		// One read per round: the next bytes go once these are consumed.
		ap.writeEchoed(t, mc, src, sent, size, (i+1)*size)
	}
	sc := serverEnd(ap.member("m0"), id)
	sc.mu.Lock()
	held, ckpts := sc.st.Marks(), len(sc.server.ckpts)
	sc.mu.Unlock()
	t.Logf("after %d checkpoints beyond the client's window: %d checkpoints, %d marks", rounds, ckpts, held)
	require.LessOrEqual(t, ckpts, maxCheckpoints+1)
	require.LessOrEqual(t, held, ckpts, "no mark without its checkpoint")

	// The client reads everything: the echo is intact.
	ap.finishEcho(t, mc, sent, sha256.New(), rounds*size, "m0")
}

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
