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
	readBufferSize = 32 << 10 // read buffer for frame headers and small frames, pooled
	maxBatch       = 1 << 20  // DATA bytes put in one vectored write
	maxBatchFrames = maxBatch/wire.MaxPayload + 8
	scratchSize    = 64 << 10 // coalescing buffer for links without writev, pooled
)

// The send loop's states (link.send).
const (
	sendIdle    int32 = iota // no send loop runs
	sendRunning              // a send loop runs
	sendPending              // a send loop runs or starts, and must look again
	sendDead                 // the link is shut down: no send loop starts
)

// link is one transport connection carrying a session. A session has at most
// one current link; a link that dies is never reused.
type link struct {
	c        *Conn
	nc       net.Conn
	rd       frameReader
	born     time.Time
	lastRecv atomic.Int64 // nanoseconds after born when bytes were last read off nc

	send  atomic.Int32  // the send loop's state (sendIdle...)
	loops atomic.Int32  // send loops started, for tests and debugState
	dead  chan struct{} // closed when the link is shut down
	once  sync.Once
	check *timerEntry // the keepalive check (watch), on a shared timerSet

	// Guarded by the session's read token: the frame being read.
	fs frameState

	// Guarded by c.mu.
	readDeadline time.Time // last read deadline set on nc
	pongDue      bool
	pongVal      uint64
	pingDue      bool
	lastPing     time.Duration // when the last PING was put on the link (after born)
	busySince    time.Duration // when the link's check first found it awaiting the peer
	wasBusy      bool          // the link awaited the peer at its last check

	// Guarded by dmu: an application Write is sending on nc itself
	// (flushFromWrite), and the write deadline last put on nc, kept between
	// sends so that Writes under one deadline set it once.
	dmu           sync.Mutex
	direct        bool
	writeDeadline time.Time

	// Guarded by wmu: the writer side. The lock is apart from the link so
	// that the session can wait for a dead link's last write without
	// keeping the link's buffers (Conn.lastWriter).
	wmu    *sync.Mutex
	writev bool
	batch  *batch      // taken from batches while a flush builds and writes
	bufs   net.Buffers // the frames of the batch being built and written
}

func newLink(c *Conn, nc net.Conn, br *bufio.Reader) *link {
	l := &link{
		c: c, nc: nc, born: time.Now(),
		wmu:  new(sync.Mutex),
		dead: make(chan struct{}),
	}
	l.rd.init(nc, br)
	l.rd.heard = l.touch // once per read off the socket, not per frame
	l.check = c.params.timers.entry(l.watch)
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		l.writev = true
	}
	return l
}

// start (c.mu held) arms the link's check and sends what the session has
// for it: what the peer lacks, our progress, pool news. A link with
// nothing due (a new session's, most often; a quiet session's after a move
// or a resume) starts no send loop.
func (l *link) start() {
	l.check.schedule(l.c.params.keepAlive / 2)
	if !l.nothingDueLocked() {
		l.kickNow()
	}
}

// kickNow makes the send loop look for frames to send, starting it if it
// is not running: an idle link has no send loop.
func (l *link) kickNow() {
	for {
		switch s := l.send.Load(); s {
		case sendDead, sendPending:
			return
		case sendIdle:
			if l.send.CompareAndSwap(s, sendPending) {
				l.loops.Add(1)
				go l.sendLoop()
				return
			}
		case sendRunning:
			if l.send.CompareAndSwap(s, sendPending) {
				return
			}
		}
	}
}

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
		l.send.Store(sendDead)
		close(l.dead)
		l.check.stop()
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
