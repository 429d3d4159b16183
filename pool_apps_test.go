package mtcp

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/transfer"
)

// appOptions shape the echo application of an appPool.
type appOptions struct {
	// checkpoint says whether to checkpoint after a read, given the input
	// consumed in all and since the last checkpoint (the start counts as
	// one); nil checkpoints after every read. The session's start is always
	// checkpointed unless noCheckpoint is set.
	checkpoint   func(consumed, since int64) bool
	noCheckpoint bool // never call Checkpoint
	// unmovable, if set, picks sessions (by id) that never call Checkpoint.
	unmovable func(id string) bool
	// output returns what to write for input p; nil echoes p.
	output func(member string, restored bool, p []byte) []byte
	// afterRead runs in the application's loop after each read has been
	// answered (and checkpointed, if it was).
	afterRead func(member string, c *Conn, consumed int64)
	readSize  int    // the application's read buffer (16 KiB if 0)
	start     []byte // written first by a new session (not a restored one)
	// acceptGate, if set, returns a channel that a member's accept loop
	// waits for before it accepts anything (nil: no wait).
	acceptGate func(member string) <-chan struct{}
	// app, if set, runs instead of the echo application.
	app func(ap *appPool, member string, c *Conn)
}

// appPool is an in-process pool of members on loopback whose sessions run
// an echo application shaped by appOptions. Its state is the count of input
// bytes it consumed and a running SHA-256 of them.
type appPool struct {
	t       testing.TB
	members []*Listener
	opts    appOptions

	wg sync.WaitGroup
	appRecord
	conns map[string]*Conn    // session -> the newest server end; under mu
	ends  map[string][]runEnd // session -> how each run ended, in the order they ended; under mu
}

// runEnd is how one run of the application on a session ended.
type runEnd struct {
	member string
	err    error // nil at the end of the input
}

// startAppPool starts n members (m0, m1, ...) that serve the application.
func startAppPool(t testing.TB, n int, tweak func(*Config), opts appOptions) *appPool {
	ap := &appPool{t: t, opts: opts, conns: map[string]*Conn{}, ends: map[string][]runEnd{}}
	ap.init()
	ap.members = startMembers(t, n, tweak, ap.serve)
	return ap
}

// startReplicatedPair starts two members (m0, m1) serving the echo, each
// keeping copies of the other's checkpoints (Replicas 1).
func startReplicatedPair(t testing.TB) *appPool {
	return startAppPool(t, 2, func(c *Config) { c.Replicas = 1 }, appOptions{})
}

func (ap *appPool) member(name string) *Listener { return memberNamed(ap.t, ap.members, name) }

func (ap *appPool) addr(name string) string { return ap.member(name).Addr().String() }

func (ap *appPool) close() {
	for _, ln := range ap.members {
		ln.Close()
	}
	done := make(chan struct{})
	go func() {
		ap.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(5 * time.Second):
	}
	// A test that failed left clients open: end their applications.
	ap.mu.Lock()
	conns := make([]*Conn, 0, len(ap.conns))
	for _, c := range ap.conns {
		conns = append(conns, c)
	}
	ap.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	<-done
}

func (ap *appPool) serve(ln *Listener) {
	var gate <-chan struct{}
	if g := ap.opts.acceptGate; g != nil {
		gate = g(ln.NodeName())
	}
	serveEach(&ap.wg, ln, gate, func(c *Conn) {
		if ap.opts.app != nil {
			ap.opts.app(ap, ln.NodeName(), c)
			return
		}
		ap.run(ln.NodeName(), c)
	})
}

func (ap *appPool) run(member string, c *Conn) {
	defer c.Close()
	id := c.SessionID()
	restored := c.State() != nil
	h := sha256.New()
	var consumed, since int64
	if st := c.State(); restored {
		if len(st) < 8 {
			ap.fail(fmt.Errorf("%s: state of %d bytes", member, len(st)))
			return
		}
		consumed = int64(binary.BigEndian.Uint64(st))
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st[8:]); err != nil {
			ap.fail(fmt.Errorf("%s: bad state: %w", member, err))
			return
		}
	}
	state := func() []byte { return binary.BigEndian.AppendUint64(nil, uint64(consumed)) }
	end := ap.begin(member, c)
	o := ap.opts
	if o.unmovable != nil && o.unmovable(id) {
		o.noCheckpoint = true
	}
	if !o.noCheckpoint {
		if err := c.Checkpoint(append(state(), mustState(h)...)); err != nil {
			end(err)
			return
		}
	}
	if len(o.start) > 0 && !restored {
		if _, err := c.Write(o.start); err != nil {
			end(fmt.Errorf("write: %w", err))
			return
		}
	}
	size := o.readSize
	if size == 0 {
		size = 16 << 10
	}
	buf := make([]byte, size)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			consumed += int64(n)
			since += int64(n)
			out := buf[:n]
			if o.output != nil {
				out = o.output(member, restored, out)
			}
			if _, werr := c.Write(out); werr != nil {
				end(fmt.Errorf("write: %w", werr))
				return
			}
			if !o.noCheckpoint && (o.checkpoint == nil || o.checkpoint(consumed, since)) {
				if cerr := c.Checkpoint(append(state(), mustState(h)...)); cerr != nil {
					end(fmt.Errorf("checkpoint: %w", cerr))
					return
				}
				since = 0
			}
			if o.afterRead != nil {
				o.afterRead(member, c, consumed)
			}
		}
		if err == io.EOF {
			ap.setFinal(id, h.Sum(nil))
			// Close at once, with no CloseWrite first: a FIN followed by a
			// CLOSE may leave the CLOSE unsent or unacknowledged (see
			// TestCloseAfterAcknowledgedCloseWrite). Close delivers the
			// output in the background.
			end(nil)
			return
		}
		if err != nil {
			end(fmt.Errorf("read: %w", err))
			return
		}
	}
}

// begin records that the application runs session c on member, and returns
// end, which records how that run ended (nil: at the end of its input); an
// error other than ErrMigrated is kept among the application's errors.
func (ap *appPool) begin(member string, c *Conn) (end func(error)) {
	id := c.SessionID()
	ap.mu.Lock()
	ap.served[id] = append(ap.served[id], member)
	ap.conns[id] = c
	ap.mu.Unlock()
	return func(err error) {
		ap.mu.Lock()
		ap.ends[id] = append(ap.ends[id], runEnd{member, err})
		ap.mu.Unlock()
		if err != nil && !errors.Is(err, ErrMigrated) {
			ap.fail(fmt.Errorf("%s: session %s: %w", member, id, err))
		}
	}
}

// endOf returns how the run of session id on member ended (ok false while it
// runs).
func (ap *appPool) endOf(id, member string) (err error, ok bool) {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	for _, e := range ap.ends[id] {
		if e.member == member {
			return e.err, true
		}
	}
	return nil, false
}

// waitEnd waits until the run of session id on member has ended and returns
// its error.
func (ap *appPool) waitEnd(id, member string) error {
	var err error
	require.Eventually(ap.t, func() bool {
		var ok bool
		err, ok = ap.endOf(id, member)
		return ok
	}, 5*time.Second, 5*time.Millisecond, "the application on %s ends", member)
	return err
}

// serverConn returns the newest server end of a session, waiting for it.
func (ap *appPool) serverConn(id string) *Conn {
	var c *Conn
	require.Eventually(ap.t, func() bool {
		ap.mu.Lock()
		defer ap.mu.Unlock()
		c = ap.conns[id]
		return c != nil
	}, 5*time.Second, 5*time.Millisecond)
	return c
}

// dial opens a session on member name with d (nil: a Dialer with the
// test's logger) and waits until its client knows every member.
func (ap *appPool) dial(t testing.TB, d *Dialer, name string) *Conn {
	t.Helper()
	return dialPool(t, d, ap.addr(name), len(ap.members))
}

// dialPool opens a session on the member at addr with d (nil: a Dialer
// with the test's logger) and waits until its client knows the n members
// of the pool.
func dialPool(t testing.TB, d *Dialer, addr string, n int) *Conn {
	t.Helper()
	if d == nil {
		d = &Dialer{Logger: testLogger(t)}
	}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	waitMembers(t, c, n)
	return c.(*Conn)
}

// openEcho dials member name (see dial) and returns an echoSession on the
// new session, after a first round of n bytes (none if n is 0).
func (ap *appPool) openEcho(t testing.TB, d *Dialer, name string, seed uint64, n int) *echoSession {
	t.Helper()
	es := newEchoSession(ap.dial(t, d, name), seed)
	if n > 0 {
		require.NoError(t, es.round(n, 10*time.Second))
	}
	return es
}

// closeSession closes the client end c, waits until the session has ended
// and its application has read the input to its end, and returns the
// digest of that input.
func (ap *appPool) closeSession(t testing.TB, c net.Conn) []byte {
	t.Helper()
	return closeAndDigest(t, c, ap.finalDigest)
}

// closeAndDigest closes the client end c, waits until the session has
// ended, then until final (an application's digest of a session's whole
// input, nil before its end) has the session's digest, and returns it.
func closeAndDigest(t testing.TB, c net.Conn, final func(id string) []byte) []byte {
	t.Helper()
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
	id := c.(*Conn).SessionID()
	require.Eventually(t, func() bool { return final(id) != nil }, 5*time.Second, 10*time.Millisecond,
		"the application reads session %s to its end", id)
	return final(id)
}

// serverEnd returns the server end of session id held by ln (nil if none).
func serverEnd(ln *Listener, id string) *Conn {
	for _, c := range ln.sessionList() {
		if c.SessionID() == id {
			return c
		}
	}
	return nil
}

// echoSession drives a session round by round: each round writes bytes of
// a deterministic pattern while reading them back, and checks the echo.
type echoSession struct {
	c          *Conn
	src        *transfer.Pattern
	sent, recv hash.Hash
	n          int64
}

func newEchoSession(c net.Conn, seed uint64) *echoSession {
	return &echoSession{c: c.(*Conn), src: newPattern(1<<62, seed), sent: sha256.New(), recv: sha256.New()}
}

// round writes n bytes and reads n bytes back, within timeout.
func (s *echoSession) round(n int, timeout time.Duration) error {
	out := make([]byte, n)
	_, _ = io.ReadFull(s.src, out)
	s.sent.Write(out)
	_ = s.c.SetDeadline(time.Now().Add(timeout))
	defer s.c.SetDeadline(time.Time{})
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < n; {
			k, err := s.c.Write(out[off:min(n, off+64<<10)])
			off += k
			if err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	in := make([]byte, n)
	k, rerr := io.ReadFull(s.c, in)
	s.recv.Write(in[:k])
	s.n += int64(k)
	err := <-werr
	if rerr != nil {
		return fmt.Errorf("read %d of %d bytes back: %w (write: %v; client: %s)", k, n, rerr, err, s.c.debugState())
	}
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if !bytes.Equal(in, out) {
		i := 0
		for in[i] == out[i] {
			i++
		}
		return fmt.Errorf("echo differs at byte %d of the round (%d in the session)", i, s.n-int64(n)+int64(i))
	}
	return nil
}

// finish ends the session: CloseWrite, the server's EOF, Close. It returns
// the digest of everything sent.
func (s *echoSession) finish(timeout time.Duration) ([]byte, error) {
	_ = s.c.SetReadDeadline(time.Now().Add(timeout))
	if err := s.c.CloseWrite(); err != nil {
		return nil, err
	}
	k, err := io.Copy(io.Discard, s.c)
	if err != nil {
		return nil, fmt.Errorf("reading to EOF: %w", err)
	}
	if k != 0 {
		return nil, fmt.Errorf("%d unexpected bytes before EOF", k)
	}
	if err := s.c.Close(); err != nil {
		return nil, err
	}
	if !bytes.Equal(s.sent.Sum(nil), s.recv.Sum(nil)) {
		return nil, errors.New("the digests of what was sent and read back differ")
	}
	return s.sent.Sum(nil), nil
}

// finishSession ends the session of es (echoSession.finish), waits until it
// has ended and checks that the application read, to its end, exactly what
// the client sent.
func (ap *appPool) finishSession(t testing.TB, es *echoSession) {
	t.Helper()
	sent, err := es.finish(10 * time.Second)
	require.NoError(t, err)
	ap.waitEnded(t, es.c)
	id := es.c.SessionID()
	require.Eventually(t, func() bool { return ap.finalDigest(id) != nil }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, sent, ap.finalDigest(id), "the application read exactly what the client sent")
}

// writeEchoed writes the next n bytes of src to c, adds them to sent, and
// waits until the application has consumed the session's input up to
// upTo: one read (and, for an echo that checkpoints after every read, one
// checkpoint) per write.
func (ap *appPool) writeEchoed(t testing.TB, c *Conn, src io.Reader, sent hash.Hash, n int, upTo int) {
	t.Helper()
	p := make([]byte, n)
	_, _ = io.ReadFull(src, p)
	sent.Write(p)
	_, err := c.Write(p)
	require.NoError(t, err)
	sc := ap.serverConn(c.SessionID())
	require.Eventually(t, func() bool {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		return sc.st.Consumed() == uint64(upTo)
	}, 10*time.Second, 100*time.Microsecond)
}

// finishEcho closes c's sending side and reads the rest of the echo into
// got, rest bytes; then checks that the client and the application read
// what was sent, that the session ended, served by the members named, and
// that the applications saw no error.
func (ap *appPool) finishEcho(t testing.TB, c *Conn, sent, got hash.Hash, rest int64, servedBy ...string) {
	t.Helper()
	require.NoError(t, c.CloseWrite())
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	k, err := io.Copy(got, c)
	require.NoError(t, err)
	require.Equal(t, rest, k)
	require.Equal(t, sent.Sum(nil), got.Sum(nil))
	ap.waitEnded(t, c)
	require.Equal(t, sent.Sum(nil), ap.finalDigest(c.SessionID()))
	require.Equal(t, servedBy, ap.servedBy(c.SessionID()))
	require.Empty(t, ap.errors(), fmt.Sprint(ap.errors()))
}

// waitEnded waits until a client session has ended; if it does not, the
// test fails with the states of both ends.
func (ap *appPool) waitEnded(t testing.TB, c net.Conn) {
	t.Helper()
	mc := c.(*Conn)
	select {
	case <-mc.endedCh:
	case <-time.After(10 * time.Second):
		server := "none"
		ap.mu.Lock()
		sc := ap.conns[mc.SessionID()]
		ap.mu.Unlock()
		if sc != nil {
			server = sc.debugState()
		}
		t.Fatalf("session %s did not end:\nclient: %s\nserver: %s", mc.SessionID(), mc.debugState(), server)
	}
}

// describeServerEnds describes the server ends of session id on every
// member that holds one.
func describeServerEnds(members []*Listener, id string) string {
	out := ""
	for _, ln := range members {
		if sc := serverEnd(ln, id); sc != nil {
			out += fmt.Sprintf("\n%s: %s", ln.NodeName(), sc.debugState())
		}
	}
	if out == "" {
		return "no member holds it"
	}
	return out
}

// mustState is the hash's state, as the application checkpoints it.
func mustState(h any) []byte {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}
