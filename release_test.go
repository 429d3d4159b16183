package mtcp

import (
	"context"
	"crypto/sha256"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// heldReads is a DialFunc whose links can stop handing what they read to
// the client: bytes read off the socket while held wait until let go.
type heldReads struct {
	mu   sync.Mutex
	gate chan struct{} // nil: reads pass
}

func (h *heldReads) dial(ctx context.Context, network, address string) (net.Conn, error) {
	nc, err := (&net.Dialer{}).DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &heldConn{Conn: nc, h: h}, nil
}

func (h *heldReads) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate == nil {
		h.gate = make(chan struct{})
	}
}

func (h *heldReads) letGo() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate != nil {
		close(h.gate)
		h.gate = nil
	}
}

type heldConn struct {
	net.Conn
	h *heldReads
}

func (hc *heldConn) Read(p []byte) (int, error) {
	n, err := hc.Conn.Read(p)
	hc.h.mu.Lock()
	gate := hc.h.gate
	hc.h.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return n, err
}

// TestReleaseWaitsForCheckpointInWindow: the client reads nothing, so the
// output of an echo that checkpoints after every read soon lies beyond the
// client's window, while checkpoints within the window wait for the client
// to acknowledge their output (its link is slow to deliver it). As the
// client's retention fills, those checkpoints are on their way to
// durability: the client keeps the input from them on, and the session can
// still move live. (The server used to look at its newest checkpoint only,
// and seeing it beyond the window let the client free input no checkpoint
// whose output the client had covered: the move was refused, "no
// checkpoint fits the client".)
func TestReleaseWaitsForCheckpointInWindow(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	const (
		window    = 16 << 10 // the client's: its output beyond waits
		retention = 64 << 10 // the client's: full past 3/4 of it without a checkpoint on its way
		piece     = 4 << 10
		total     = 60 << 10
	)
	hr := &heldReads{}
	c := ap.dial(t, &Dialer{Logger: testLogger(t), Window: window, Retention: retention, DialFunc: hr.dial}, "m0")
	defer c.Close() // if the test fails
	id := c.SessionID()
	src := newPattern(total, 5)
	sent := sha256.New()
	var wrote int
	write := func(upTo int) {
		t.Helper()
		for wrote < upTo {
			wrote += piece
			ap.writeEchoed(t, c, src, sent, piece, wrote)
		}
	}

	// Two pieces, echoed within the window: their checkpoint becomes
	// durable, and the client frees the input before it.
	write(2 * piece)
	sc := ap.serverConn(id)
	waitDurableAt(t, sc, 2*piece)

	// From now on the client's link holds back what it reads: no output
	// reaches the client, which acknowledges none.
	hr.hold()
	defer hr.letGo() // if the test fails
	write(total)
	sc.mu.Lock()
	release, recv := sc.st.Release(), sc.st.Received()
	sc.mu.Unlock()
	t.Logf("received %d bytes of input, the client may free those before %d", recv, release)
	require.LessOrEqual(t, release, uint64(window),
		"the client keeps the input after the checkpoints within its window")

	hr.letGo()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Migrate(ctx, ap.addr("m1")))
	require.Equal(t, "m1", c.MemberName())

	ap.finishEcho(t, c, sent, sha256.New(), total, "m0", "m1")
}

// TestMigrateWaitsForResumableCheckpoint: the client writes without
// reading until its retention fills up with no checkpoint on its way (its
// window is full): the member lets it free input beyond every checkpoint
// it was told of. A Migrate then waits, on the link it has, until the
// client hears of a checkpoint that covers the input it keeps, which comes
// once it reads; then it moves. (It used to leave at once and be refused,
// "no checkpoint fits the client".)
func TestMigrateWaitsForResumableCheckpoint(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	const (
		window    = 16 << 10
		retention = 64 << 10
		piece     = 4 << 10
		total     = 72 << 10
	)
	c := ap.dial(t, &Dialer{Logger: testLogger(t), Window: window, Retention: retention}, "m0")
	defer c.Close() // if the test fails
	src := newPattern(total, 7)
	sent := sha256.New()
	for wrote := piece; wrote <= total; wrote += piece {
		ap.writeEchoed(t, c, src, sent, piece, wrote)
	}
	// The checkpoints within the window become durable; the retention is
	// full past them: the client may free input beyond them.
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.client.resumableLocked(c)
	}, 10*time.Second, time.Millisecond, "the client frees input beyond every checkpoint it knows")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	moved := make(chan error, 1)
	go func() { moved <- c.Migrate(ctx, ap.addr("m1")) }()
	waiting := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.client.markCh != nil
	}
	for !waiting() {
		select {
		case err := <-moved:
			t.Fatalf("Migrate returned before the client read: %v", err)
		case <-time.After(time.Millisecond):
		}
	}

	// The client reads: the output beyond its window comes, with the marks
	// of newer checkpoints.
	got := sha256.New()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.CopyN(got, c, total/2)
	require.NoError(t, err)
	require.NoError(t, <-moved)
	require.Equal(t, "m1", c.MemberName())

	ap.finishEcho(t, c, sent, got, total-total/2, "m0", "m1")
}

// TestCheckpointsKeptSpreadOut: the client reads nothing while an echo
// that checkpoints after every read answers hundreds of pieces, so its
// output piles up beyond the client's window, past the checkpoints the
// server keeps. Those kept stay spread over the whole output; once the
// client has read half of it and moves, the successor restores a
// checkpoint a short way before what the client received and regenerates
// little. (The server used to keep the oldest ones and the newest: the move
// regenerated nearly all the output the client had read.)
func TestCheckpointsKeptSpreadOut(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	const (
		window = 16 << 10
		piece  = 4 << 10
		total  = 200 * piece
	)
	c := ap.dial(t, &Dialer{Logger: testLogger(t), Window: window}, "m0")
	defer c.Close() // if the test fails
	id := c.SessionID()
	src := newPattern(total, 9)
	sent := sha256.New()
	for wrote := piece; wrote <= total; wrote += piece {
		ap.writeEchoed(t, c, src, sent, piece, wrote)
	}
	sc := ap.serverConn(id)
	sc.mu.Lock()
	var outs []uint64
	for _, r := range sc.server.ckpts {
		outs = append(outs, r.OutPos)
	}
	sc.mu.Unlock()
	widest := uint64(0)
	for i := 1; i < len(outs); i++ {
		widest = max(widest, outs[i]-outs[i-1])
	}
	spacing := uint64(total) / (maxCheckpoints - 1) // were they evenly spread
	t.Logf("checkpoints kept at output positions %v: widest gap %d", outs, widest)
	require.LessOrEqual(t, widest, 2*spacing+piece, "the checkpoints kept spread over the output")

	// The client reads half the echo and moves.
	got := sha256.New()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.CopyN(got, c, total/2)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Migrate(ctx, ap.addr("m1")))
	moved := ap.serverConn(id)
	moved.mu.Lock()
	from, to, _, _ := moved.st.RegeneratedDigest()
	moved.mu.Unlock()
	t.Logf("the successor regenerates output %d to %d", from, to)
	require.LessOrEqual(t, to-from, 2*spacing+piece, "output regenerated after the move")

	ap.finishEcho(t, c, sent, got, total-total/2, "m0", "m1")
}

// TestReleaseBeyondDurableLandsOnCheckpoint: the replica refuses the
// copies of a session's checkpoints, so none after the first becomes
// durable, while the client writes and reads an echo that checkpoints
// after every read. As the client's retention fills, it is let free input
// beyond the durable checkpoint: up to a checkpoint whose output it has,
// which the member keeps, so that a live move can restore it. (It used to
// free half its retention, wherever that fell: the checkpoints between
// there and the client's output could be dropped meanwhile, and a move
// then found none the client could resume from, "no checkpoint fits the
// client".)
func TestReleaseBeyondDurableLandsOnCheckpoint(t *testing.T) {
	ap := startReplicatedPair(t)
	defer ap.close()
	const (
		retention = 64 << 10 // the client's: full past 3/4 of it
		piece     = 3000     // half the retention is no multiple of it
		total     = 60 * piece
	)
	c := ap.dial(t, &Dialer{Logger: testLogger(t), Retention: retention}, "m0")
	defer c.Close() // if the test fails
	id := c.SessionID()
	src := newPattern(total, 11)
	sent, got := sha256.New(), sha256.New()
	buf := make([]byte, piece)
	var wrote int
	echo := func(upTo int) {
		t.Helper()
		for wrote < upTo {
			wrote += piece
			ap.writeEchoed(t, c, src, sent, piece, wrote)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := io.ReadFull(c, buf)
			require.NoError(t, err)
			got.Write(buf)
		}
	}

	echo(2 * piece)
	sc := ap.serverConn(id)
	waitDurableAt(t, sc, 2*piece)

	refuseCopies(t, ap.member("m1"))
	echo(total)
	sc.mu.Lock()
	release, durable := sc.st.Release(), sc.server.durable.InPos
	var kept []uint64
	for _, r := range sc.server.ckpts {
		kept = append(kept, r.InPos)
	}
	sc.mu.Unlock()
	t.Logf("durable checkpoint at input %d; the client may free its input before %d; checkpoints kept at %v", durable, release, kept)
	require.Greater(t, release, durable, "the client frees input beyond the durable checkpoint")
	require.Contains(t, kept, release, "the client keeps its input from a checkpoint the member keeps")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Migrate(ctx, ap.addr("m1")))
	require.Equal(t, "m1", c.MemberName())
	ap.finishEcho(t, c, sent, got, 0, "m0", "m1")
}

// waitDurableAt waits until the server session sc's durable checkpoint is
// the one at input position in.
func waitDurableAt(t testing.TB, sc *Conn, in uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		return sc.server.durable != nil && sc.server.durable.InPos == in
	}, 10*time.Second, time.Millisecond, "the checkpoint at input %d is durable", in)
}
