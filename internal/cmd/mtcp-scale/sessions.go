package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp"
)

// sessionMetrics counts one session's events: each session gets a Dialer
// of its own carrying one.
type sessionMetrics struct {
	moved, failedOver, resumed atomic.Int64
	longest                    atomic.Int64 // the longest pause of a move or resume, in nanoseconds
}

func (*sessionMetrics) SessionOpened()               {}
func (*sessionMetrics) SessionEnded(bool)            {}
func (m *sessionMetrics) Resumed(d time.Duration)    { m.resumed.Add(1); m.paused(d) }
func (m *sessionMetrics) Moved(d time.Duration)      { m.moved.Add(1); m.paused(d) }
func (m *sessionMetrics) FailedOver(d time.Duration) { m.failedOver.Add(1); m.paused(d) }

// paused notes a pause of the session (a move, a failover or a resume).
func (m *sessionMetrics) paused(d time.Duration) {
	for {
		old := m.longest.Load()
		if int64(d) <= old || m.longest.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}
func (m *sessionMetrics) moves() (moved, failedOver int) {
	return int(m.moved.Load()), int(m.failedOver.Load())
}

// obeyPolicy moves a session only when its server asks.
type obeyPolicy struct{}

func (obeyPolicy) MoveRequested(addr string, _ mtcp.MoveReason) string { return addr }
func (obeyPolicy) Check(mtcp.PolicyStats) string                       { return "" }

// dialCounted opens an mtcp session whose moves are counted; a nil policy
// is the Dialer's default.
func dialCounted(ctx context.Context, addr string, policy mtcp.MovePolicy) (*mtcp.Conn, *sessionMetrics, error) {
	m := &sessionMetrics{}
	d := &mtcp.Dialer{Metrics: m, Policy: policy}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	return c.(*mtcp.Conn), m, nil
}

// echoClient is the client of a checkpointing echo: it sends rounds of
// pattern bytes and checks that each comes back as sent, keeping SHA-256
// digests of all it sent and received.
type echoClient struct {
	c     *mtcp.Conn
	m     *sessionMetrics
	seed  uint64
	epoch uint64 // when it opened

	mu         sync.Mutex
	off        uint64
	sent, recv hash.Hash
	wbuf, rbuf []byte
	err        error
}

// errEchoDiffers: an echo came back other than it was sent.
var errEchoDiffers = errors.New("the echo differs from what was sent")

func dialEcho(ctx context.Context, addr string, seed uint64, policy mtcp.MovePolicy) (*echoClient, error) {
	c, m, err := dialCounted(ctx, addr, policy)
	if err != nil {
		return nil, err
	}
	return &echoClient{c: c, m: m, seed: seed, epoch: c.Status().Epoch, sent: sha256.New(), recv: sha256.New()}, nil
}

// round sends n bytes and reads them back before deadline.
func (e *echoClient) round(n int, deadline time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	if err := e.roundLocked(n, deadline); err != nil {
		e.err = err
		return err
	}
	return nil
}

func (e *echoClient) roundLocked(n int, deadline time.Time) error {
	if len(e.wbuf) < n {
		e.wbuf, e.rbuf = make([]byte, n), make([]byte, n)
	}
	w, r := e.wbuf[:n], e.rbuf[:n]
	fillPattern(w, e.seed, e.off)
	_ = e.c.SetDeadline(deadline)
	if _, err := e.c.Write(w); err != nil {
		return fmt.Errorf("echo write: %w", err)
	}
	e.sent.Write(w)
	k, err := io.ReadFull(e.c, r)
	e.recv.Write(r[:k])
	if err != nil {
		return fmt.Errorf("echo read (%d of %d bytes): %w", k, n, err)
	}
	if !bytes.Equal(w, r) {
		return errEchoDiffers
	}
	e.off += uint64(n)
	return nil
}

// EchoResult is how an echo session ended.
type EchoResult struct {
	ID, Server string        // the member serving it at the end
	Moved      int           // live migrations (Metrics.Moved)
	FailedOver int           // takeovers from replicas (Metrics.FailedOver)
	Resumed    int           // resumes on the same member
	Longest    time.Duration // the longest pause of a move, failover or resume (by the Metrics)
	Epochs     uint64        // epoch raises since it opened (one per move to another member)
	Bytes      uint64        // echoed
	SentDigest []byte        // SHA-256 of all it sent
	Intact     bool          // every echo came back as sent, and nothing more
	Lost       bool          // the session was lost (mtcp.ErrSessionLost)
	Err        string
}

// finish runs a last round, ends the input, reads to the end and closes.
func (e *echoClient) finish(n int, deadline time.Time) EchoResult {
	err := e.round(n, deadline)
	if err == nil {
		e.mu.Lock()
		err = closeWrite(e.c)
		if err == nil {
			var extra int64
			extra, err = io.Copy(io.Discard, e.c)
			if err == nil && extra > 0 {
				err = fmt.Errorf("%d bytes after the last echo", extra)
			}
		}
		e.mu.Unlock()
	}
	r := e.result(err)
	_ = e.c.Close()
	return r
}

func (e *echoClient) result(err error) EchoResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		err = e.err
	}
	st := e.c.Status()
	moved, failedOver := e.m.moves()
	r := EchoResult{
		ID: e.c.SessionID(), Server: st.Member, Moved: moved, FailedOver: failedOver,
		Resumed: int(e.m.resumed.Load()), Longest: time.Duration(e.m.longest.Load()), Epochs: st.Epoch - e.epoch, Bytes: e.off, SentDigest: e.sent.Sum(nil),
		Intact: err == nil && bytes.Equal(e.sent.Sum(nil), e.recv.Sum(nil)),
		Lost:   errors.Is(err, mtcp.ErrSessionLost),
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// busyLoops runs echo rounds on some sessions until stopped.
type busyLoops struct {
	quit   chan struct{}
	wg     sync.WaitGroup
	rounds atomic.Int64
}

func startBusy(es []*echoClient, args BusyArgs) *busyLoops {
	b := &busyLoops{quit: make(chan struct{})}
	for i := 0; i < len(es) && args.Every > 0; i += args.Every {
		b.wg.Add(1)
		go func(e *echoClient) {
			defer b.wg.Done()
			for {
				select {
				case <-b.quit:
					return
				case <-time.After(args.Pause):
				}
				if e.round(args.Round, time.Now().Add(busyRoundTimeout)) != nil {
					return
				}
				b.rounds.Add(1)
			}
		}(es[i])
	}
	return b
}

// busyRoundTimeout bounds one busy round: a session that cannot echo for
// that long counts as lost.
const busyRoundTimeout = 60 * time.Second

// stop ends the loops and returns how many rounds they ran.
func (b *busyLoops) stop() int {
	close(b.quit)
	b.wg.Wait()
	return int(b.rounds.Load())
}

// streamClient reads a server's paced stream and checks it.
type streamClient struct {
	c    *mtcp.Conn
	m    *sessionMetrics
	done chan struct{}

	mu      sync.Mutex
	check   *patternChecker
	bytes   uint64
	err     error
	closing bool
}

func dialStream(ctx context.Context, addr string, seed uint64) (*streamClient, error) {
	c, m, err := dialCounted(ctx, addr, nil)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(binary.BigEndian.AppendUint64(nil, seed)); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("sending the seed: %w", err)
	}
	s := &streamClient{c: c, m: m, done: make(chan struct{}), check: newPatternChecker(seed, true)}
	go s.readLoop()
	return s, nil
}

func (s *streamClient) readLoop() {
	defer close(s.done)
	buf := make([]byte, 16<<10)
	for {
		n, err := s.c.Read(buf)
		s.mu.Lock()
		if n > 0 && s.err == nil {
			if cerr := s.check.check(buf[:n]); cerr != nil {
				s.err = cerr
			}
			s.bytes += uint64(n)
		}
		if err != nil && s.err == nil && !s.closing {
			s.err = err
		}
		stop := err != nil || s.err != nil
		s.mu.Unlock()
		if stop {
			return
		}
	}
}

// StreamResult is a streaming session's figures.
type StreamResult struct {
	ID, Server string
	Moved      int
	FailedOver int
	Bytes      uint64 // received and checked
	Verified   bool   // every byte as sent (and the SHA-256 digests agree)
	Err        string
}

func (s *streamClient) result() StreamResult {
	moved, failedOver := s.m.moves()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := StreamResult{ID: s.c.SessionID(), Server: s.c.MemberName(), Moved: moved, FailedOver: failedOver,
		Bytes: s.bytes, Verified: s.err == nil && s.check.digestsMatch()}
	if s.err != nil {
		r.Err = s.err.Error()
	}
	return r
}

func (s *streamClient) close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	_ = s.c.Close()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}
