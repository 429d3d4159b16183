package mtcp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp/internal/stream"
	"github.com/migratory/mtcp/internal/wire"
)

const (
	readBufferSize = 32 << 10 // bufio size for frame headers and small frames
	maxBatch       = 1 << 20  // DATA bytes put in one vectored write
	maxBatchFrames = maxBatch/wire.MaxPayload + 8
	scratchSize    = 64 << 10 // coalescing buffer for links without writev
)

// link is one transport connection carrying a session. A session has at most
// one current link; a link that dies is never reused.
type link struct {
	c        *Conn
	nc       net.Conn
	br       *bufio.Reader
	prev     *link // the link before this one: its reader must finish first
	born     time.Time
	lastRecv atomic.Int64 // nanoseconds after born when a frame last arrived

	kick     chan struct{} // capacity 1: the send loop has work
	dead     chan struct{} // closed when the link is shut down
	readDone chan struct{} // closed when the read loop has returned
	once     sync.Once
	cause    error
	watchdog *time.Timer

	// Guarded by c.mu.
	pongDue  bool
	pongVal  uint64
	pingDue  bool
	lastPing time.Duration

	// Guarded by wmu: the writer side.
	wmu     sync.Mutex
	writev  bool
	bufs    net.Buffers
	hdrs    [maxBatchFrames][24]byte
	scratch []byte
}

func newLink(c *Conn, nc net.Conn, br *bufio.Reader, prev *link) *link {
	if br == nil {
		br = bufio.NewReaderSize(nc, readBufferSize)
	}
	l := &link{
		c: c, nc: nc, br: br, prev: prev, born: time.Now(),
		kick:     make(chan struct{}, 1),
		dead:     make(chan struct{}),
		readDone: make(chan struct{}),
		bufs:     make(net.Buffers, 0, 3*maxBatchFrames),
	}
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		l.writev = true
	default:
		l.scratch = make([]byte, 0, scratchSize)
	}
	return l
}

func (l *link) start() {
	go l.readLoop()
	go l.sendLoop()
	l.watchdog = time.AfterFunc(l.c.params.keepAlive/2, l.watch)
	l.kickNow() // resend what the peer lacks, tell it our progress
}

func (l *link) kickNow() { signal(l.kick) }

func (l *link) touch() { l.lastRecv.Store(int64(time.Since(l.born))) }

func (l *link) sinceRecv() time.Duration {
	return time.Since(l.born) - time.Duration(l.lastRecv.Load())
}

// shutdown closes the link without telling the session (which already knows).
func (l *link) shutdown(cause error) {
	l.once.Do(func() {
		l.cause = cause
		close(l.dead)
		if l.watchdog != nil {
			l.watchdog.Stop()
		}
		_ = l.nc.Close()
	})
}

// fail closes a link that broke and tells the session.
func (l *link) fail(cause error) {
	first := false
	l.once.Do(func() {
		first = true
		l.cause = cause
		close(l.dead)
		if l.watchdog != nil {
			l.watchdog.Stop()
		}
		_ = l.nc.Close()
	})
	if first {
		l.c.linkDown(l, cause)
	}
}

// watch is the keepalive watchdog: it runs every half interval, asks for a
// PING when the link has been quiet for an interval, and declares the link
// dead when it has been quiet for the timeout.
func (l *link) watch() {
	select {
	case <-l.dead:
		return
	default:
	}
	p := l.c.params
	quiet := l.sinceRecv()
	if quiet >= p.keepAliveTimeout {
		l.fail(errKeepAliveTimeout)
		return
	}
	if quiet >= p.keepAlive {
		now := time.Since(l.born)
		l.c.mu.Lock()
		if now-l.lastPing >= p.keepAlive {
			l.pingDue, l.lastPing = true, now
		}
		l.c.mu.Unlock()
		l.kickNow()
	}
	l.watchdog.Reset(p.keepAlive / 2)
}

// sendLoop writes whatever the session has for the link when kicked.
func (l *link) sendLoop() {
	for {
		select {
		case <-l.dead:
			return
		case <-l.kick:
			l.flush()
		}
	}
}

// flushFromWrite sends the bytes Write just retained: directly when the
// writer side is free and no write deadline could be outrun by a blocking
// socket write, else through the send loop.
func (l *link) flushFromWrite(direct bool) {
	if direct && l.wmu.TryLock() {
		l.flushLocked()
		l.wmu.Unlock()
		return
	}
	l.kickNow()
}

func (l *link) flush() {
	l.wmu.Lock()
	l.flushLocked()
	l.wmu.Unlock()
}

// flushLocked (wmu held) sends batches of frames until nothing is left.
func (l *link) flushLocked() {
	c := l.c
	for {
		c.mu.Lock()
		if c.link != l {
			c.mu.Unlock()
			return
		}
		n := l.buildBatch()
		if n == 0 {
			c.maybeFinishLocked()
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if err := l.writeBatch(); err != nil {
			l.fail(err)
			return
		}
	}
}

// buildBatch (c.mu held) gathers the frames due into l.bufs and returns how
// many there are.
func (l *link) buildBatch() int {
	st := l.c.st
	l.bufs = l.bufs[:0]
	frames := 0
	hdr := func(n int) []byte {
		h := l.hdrs[frames][:n]
		frames++
		return h
	}
	if l.pongDue {
		l.pongDue = false
		b := wire.AppendFrame(hdr(0), wire.Pong{Opaque: l.pongVal})
		l.bufs = append(l.bufs, b)
	}
	if l.pingDue {
		l.pingDue = false
		b := wire.AppendFrame(hdr(0), wire.Ping{Opaque: uint64(time.Since(l.born))})
		l.bufs = append(l.bufs, b)
	}
	if _, dirty := st.AckDue(); dirty {
		l.bufs = append(l.bufs, wire.AppendFrame(hdr(0), st.MakeAck()))
		l.c.ackArmed = false
		if l.c.ackTimer != nil {
			l.c.ackTimer.Stop()
		}
	}
	if st.PeerEnd() != stream.Closed {
		for total := 0; total < maxBatch && frames < maxBatchFrames-2; {
			seq, a, b := st.NextData(wire.MaxPayload)
			n := len(a) + len(b)
			if n == 0 {
				break
			}
			h := (*[16]byte)(hdr(16))
			wire.PutDataHeader(h, seq, n)
			l.bufs = append(l.bufs, h[:], a)
			if len(b) > 0 {
				l.bufs = append(l.bufs, b)
			}
			total += n
		}
		if kind, pos, ok := st.NextEnd(); ok {
			var f wire.Frame = wire.Fin{End: pos}
			if kind == stream.Closed {
				f = wire.Close{End: pos}
			}
			l.bufs = append(l.bufs, wire.AppendFrame(hdr(0), f))
		}
	}
	return frames
}

// writeBatch (wmu held, c.mu not held) writes l.bufs to the connection.
func (l *link) writeBatch() error {
	if l.writev {
		_, err := l.bufs.WriteTo(l.nc)
		return err
	}
	// Coalesce small pieces so that TLS records and pipe writes are not tiny.
	out := l.scratch[:0]
	for _, b := range l.bufs {
		for len(b) > 0 {
			k := copy(out[len(out):cap(out)], b)
			out, b = out[:len(out)+k], b[k:]
			if len(out) == cap(out) {
				if _, err := l.nc.Write(out); err != nil {
					return err
				}
				out = out[:0]
			}
		}
	}
	if len(out) > 0 {
		if _, err := l.nc.Write(out); err != nil {
			return err
		}
	}
	return nil
}

// sendAbort tells the peer the session failed, best effort, then closes.
func (l *link) sendAbort(code wire.Code, reason string) {
	// The deadline also frees a flush blocked on a stuck connection.
	_ = l.nc.SetWriteDeadline(time.Now().Add(time.Second))
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_, _ = l.nc.Write(wire.AppendFrame(nil, wire.Abort{Code: code, Reason: reason}))
	l.shutdown(errors.New("aborted"))
}

var errStaleLink = errors.New("stale link")

// readLoop reads frames until the link fails.
func (l *link) readLoop() {
	defer close(l.readDone)
	if l.prev != nil {
		<-l.prev.readDone // never two readers filling the input buffer
	}
	var hb [wire.HeaderLen]byte
	body := make([]byte, 2+wire.MaxReason)
	for {
		if _, err := io.ReadFull(l.br, hb[:]); err != nil {
			l.fail(readError(err))
			return
		}
		l.touch()
		h, err := wire.ParseHeader(hb[:])
		if err == nil {
			err = l.handle(h, body)
		}
		switch {
		case err == nil:
		case errors.Is(err, errStaleLink):
			l.shutdown(errSuperseded)
			return
		case isLinkError(err):
			l.fail(err)
			return
		default:
			l.c.mu.Lock()
			if l.c.link == l {
				l.c.abortLocked(localError(err))
			}
			l.c.mu.Unlock()
			l.shutdown(err)
			return
		}
	}
}

// linkError marks I/O failures of the link, as opposed to protocol errors.
type linkError struct{ err error }

func (e *linkError) Error() string { return e.err.Error() }
func (e *linkError) Unwrap() error { return e.err }

func isLinkError(err error) bool {
	var le *linkError
	return errors.As(err, &le)
}

func readError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &linkError{fmt.Errorf("reading from link: %w", err)}
}

func (l *link) handle(h wire.Header, body []byte) error {
	if h.Type == wire.TypeData {
		return l.readData(h)
	}
	if h.Type.IsExtension() {
		if _, err := l.br.Discard(int(h.Length)); err != nil {
			return readError(err)
		}
		return nil
	}
	if int(h.Length) > len(body) {
		return fmt.Errorf("%w: unexpected %v on an established link", ErrProtocol, h.Type)
	}
	b := body[:h.Length]
	if _, err := io.ReadFull(l.br, b); err != nil {
		return readError(err)
	}
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link != l {
		return errStaleLink
	}
	st := c.st
	switch h.Type {
	case wire.TypeAck:
		if err := st.OnAck(wire.ParseAck(h, b)); err != nil {
			return err
		}
		signal(c.writable)
		if st.CanSend() {
			l.kickNow()
		}
		c.maybeFinishLocked()
	case wire.TypePing:
		l.pongDue, l.pongVal = true, binary.BigEndian.Uint64(b)
		l.kickNow()
	case wire.TypePong:
	case wire.TypeFin, wire.TypeClose:
		kind := stream.HalfClosed
		if h.Type == wire.TypeClose {
			kind = stream.Closed
			signal(c.writable) // writes fail from now on
		}
		if err := st.OnEnd(kind, binary.BigEndian.Uint64(b)); err != nil {
			return err
		}
		signal(c.readable)
		l.kickNow() // acknowledge the end at once
	case wire.TypeAbort:
		f, err := wire.Decode(h, b)
		if err != nil {
			return err
		}
		a := f.(wire.Abort)
		c.failLocked(&PeerError{Code: uint16(a.Code), Reason: a.Reason})
		return errStaleLink
	default:
		return fmt.Errorf("%w: unexpected %v on an established link", ErrProtocol, h.Type)
	}
	return nil
}

// readData stores a DATA frame's new bytes straight from the connection
// into the session's input buffer.
func (l *link) readData(h wire.Header) error {
	var sb [8]byte
	if _, err := io.ReadFull(l.br, sb[:]); err != nil {
		return readError(err)
	}
	seq := binary.BigEndian.Uint64(sb[:])
	n := int(h.Length) - 8
	c := l.c
	c.mu.Lock()
	if c.link != l {
		c.mu.Unlock()
		return errStaleLink
	}
	skip, err := c.st.BeginData(seq, n)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	k := n - skip
	var a, b []byte
	if k > 0 {
		a, b = c.st.Reserve(k)
	}
	c.mu.Unlock()
	if skip > 0 {
		if _, err := l.br.Discard(skip); err != nil {
			return readError(err)
		}
	}
	if k == 0 {
		return nil
	}
	if _, err := io.ReadFull(l.br, a); err != nil {
		return readError(err)
	}
	if _, err := io.ReadFull(l.br, b); err != nil {
		return readError(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link != l {
		return errStaleLink
	}
	c.st.Commit(k)
	if c.closed {
		c.st.DiscardInput() // nobody will read it
	}
	signal(c.readable)
	if urgent, _ := c.st.AckDue(); urgent {
		l.kickNow()
	}
	return nil
}
