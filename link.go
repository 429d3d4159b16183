package mtcp

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"time"

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
	born     time.Time
	lastRecv atomic.Int64 // nanoseconds after born when a frame last arrived

	kick     chan struct{} // capacity 1: the send loop has work
	dead     chan struct{} // closed when the link is shut down
	once     sync.Once
	watchdog *time.Timer

	// Guarded by the session's read token: the frame being read.
	fs frameState

	// Guarded by c.mu.
	readDeadline time.Time // last read deadline set on nc
	pongDue      bool
	pongVal      uint64
	pingDue      bool
	lastPing     time.Duration

	// Guarded by dmu: an application Write is sending on nc itself
	// (flushFromWrite), and whether a deadline was put on nc to interrupt it.
	dmu         sync.Mutex
	direct      bool
	interrupted bool

	// Guarded by wmu: the writer side. The lock is apart from the link so
	// that the session can wait for a dead link's last write without
	// keeping the link's buffers (Conn.lastWriter).
	wmu     *sync.Mutex
	writev  bool
	bufs    net.Buffers
	hdrs    [maxBatchFrames][32]byte
	scratch []byte
}

func newLink(c *Conn, nc net.Conn, br *bufio.Reader) *link {
	if br == nil {
		br = bufio.NewReaderSize(nc, readBufferSize)
	}
	l := &link{
		c: c, nc: nc, br: br, born: time.Now(),
		kick: make(chan struct{}, 1),
		wmu:  new(sync.Mutex),
		dead: make(chan struct{}),
		bufs: make(net.Buffers, 0, 3*maxBatchFrames),
	}
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		l.writev = true
	}
	return l
}

func (l *link) start() {
	l.watchdog = time.AfterFunc(time.Hour, l.watch)
	l.watchdog.Reset(l.c.params.keepAlive / 2)
	go l.sendLoop()
	l.kickNow() // resend what the peer lacks, tell it our progress
}

func (l *link) kickNow() { signal(l.kick) }

func (l *link) touch() { l.lastRecv.Store(int64(time.Since(l.born))) }

func (l *link) sinceRecv() time.Duration {
	return time.Since(l.born) - time.Duration(l.lastRecv.Load())
}

// shutdown closes the link without telling the session (which already
// knows). It reports whether this call closed it.
func (l *link) shutdown() bool {
	first := false
	l.once.Do(func() {
		first = true
		close(l.dead)
		if l.watchdog != nil {
			l.watchdog.Stop()
		}
		_ = l.nc.Close()
	})
	return first
}

// fail closes a link that broke and tells the session.
func (l *link) fail(cause error) {
	if l.shutdown() {
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
	c := l.c
	p := c.params
	quiet := l.sinceRecv()
	if quiet >= p.keepAliveTimeout {
		l.fail(errKeepAliveTimeout)
		return
	}
	kick := false
	c.mu.Lock()
	if quiet >= p.keepAlive {
		if now := time.Since(l.born); now-l.lastPing >= p.keepAlive {
			l.pingDue, l.lastPing = true, now
			kick = true
		}
	}
	if _, dirty := c.st.AckDue(); dirty {
		kick = true // progress too small to have been sent on its own
	}
	c.wakeReaderLocked() // nobody reads: let the background reader
	c.mu.Unlock()
	if kick {
		l.kickNow()
	}
	l.watchdog.Reset(p.keepAlive / 2)
}

// setReadDeadlineLocked (c.mu held) sets nc's read deadline unless it is
// set to t already.
func (l *link) setReadDeadlineLocked(t time.Time) {
	if t.Equal(l.readDeadline) {
		return
	}
	l.readDeadline = t
	_ = l.nc.SetReadDeadline(t)
}
