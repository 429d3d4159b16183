package mtcp

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/stream"
	"github.com/migratory/mtcp/internal/wire"
)

type role uint8

const (
	roleClient role = iota
	roleServer
)

func (r role) String() string {
	if r == roleClient {
		return "client"
	}
	return "server"
}

// sessionParams are the settings a session runs with, on either side.
type sessionParams struct {
	keepAlive        time.Duration
	keepAliveTimeout time.Duration
	idleProbe        time.Duration // quiet after which an idle link is probed
	timers           *timerSet     // where the links' checks run
	linger           time.Duration // how long Close waits for the peer to take the rest
	log              *slog.Logger
	metrics          Metrics
	mem              *memBudget // the listener's budget for buffers (nil: none)
}

// Locks, in the order they are taken (a lock is never taken while one
// later in the list is held):
//
//  1. Conn.rdMu, Conn.wrMu: serialise the application's Reads and its
//     Writes; held for a whole Read or Write, never by the library's own
//     goroutines.
//  2. link.wmu: a link's writer (the send loop, or a Write that sends on
//     the socket itself). Code holding Conn.mu that needs it (finishing a
//     session, discarding its output) uses TryLock and leaves the work to
//     the writer when it is busy.
//  3. link.dmu: whether a Write is sending on the socket itself, so that a
//     deadline or Close can interrupt it; held briefly, with wmu or alone.
//  4. Conn.mu: the session's state (the stream, its links, checkpoints);
//     methods of the session's types (Conn, link, serverSide, clientSide)
//     whose names end in Locked expect it held, and no other lock. (On
//     Listener and timerSet, Locked means their own mu.)
//  5. Listener.mu: the listener's sessions and handshakes, taken under
//     Conn.mu when a session ends.
//  6. Leaves, under any of the above and taking nothing: deadline.mu,
//     memBudget.mu, evictedRecord.mu, timerSet.mu (the set runs its
//     callbacks with it released).
//
// The pool runtime (package pool) calls sessions through pool.Session,
// whose methods take Conn.mu themselves: it holds none of its own locks
// while calling them. The commit function HandOver calls runs under
// Conn.mu and takes only the pool's leaf locks (its tombstones, its
// replica store).

// Conn is one end of an mtcp session. It implements net.Conn. Its methods
// are safe for concurrent use; concurrent Reads (and concurrent Writes) are
// serialised, and each Write is atomic with respect to other Writes.
type Conn struct {
	role   role
	id     [wire.SessionIDLen]byte
	idStr  string
	secret auth.Secret
	params sessionParams
	log    *slog.Logger

	rdMu, wrMu             sync.Mutex // serialise Reads and Writes
	rdDeadline, wrDeadline deadline
	readable, writable     chan struct{} // capacity 1: "look again"
	closeCalled            chan struct{} // closed by Close
	endedCh                chan struct{} // closed when the session ends
	// endCtx, made on first use (endedContextLocked), is cancelled when the
	// session ends: a client's moves and resume attempts derive theirs from
	// it, so that the end stops them with no goroutine watching endedCh.
	endCtx    context.Context
	endCancel context.CancelFunc

	addrs atomic.Pointer[addrPair]

	mu         sync.Mutex
	st         *stream.Stream
	link       *link       // current link; nil while detached
	lastWriter *sync.Mutex // the newest link's writer lock, even once it is gone
	closed     bool        // Close was called
	ended      bool        // the session ended (err says why, nil if finished cleanly)
	err        error
	linger     *time.Timer

	// The read token (read_token.go), guarded by mu.
	holder     holderKind
	holderLink *link
	appWants   bool // a Read waits for the background reader to yield
	wantsAcks  bool // a Write waits for acknowledgements to make room
	bgRunning  bool // a background reader runs (read_token.go)
	bgStarts   int  // background readers started, for tests and debugState
	// readWaiting: a Read waits for a signal (set and cleared under mu).
	// tokenLeft: a link was attached while one did, and no background
	// reader started for it: the Read takes the token, or wakes the reader
	// if it returns without (Read).
	readWaiting, tokenLeft atomic.Bool

	client *clientSide
	server *serverSide
}

type addrPair struct{ local, remote net.Addr }

func newConn(r role, id [wire.SessionIDLen]byte, secret auth.Secret, st *stream.Stream, p sessionParams) *Conn {
	c := &Conn{
		role:        r,
		id:          id,
		idStr:       hex.EncodeToString(id[:]),
		secret:      secret,
		params:      p,
		st:          st,
		readable:    make(chan struct{}, 1),
		writable:    make(chan struct{}, 1),
		closeCalled: make(chan struct{}),
		endedCh:     make(chan struct{}),
	}
	c.log = p.log
	if p.log.Handler() != slog.DiscardHandler { // no logger: no attributes to make
		c.log = p.log.With("session", c.idStr, "side", r.String())
	}
	return c
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// attachLocked makes nc (whose handshake left br positioned at the first
// frame) the session's link and starts it. The link takes what br read
// ahead, and br goes back to handshakeReaders: the caller must not use it
// again.
func (c *Conn) attachLocked(nc net.Conn, br *bufio.Reader) *link {
	l := newLink(c, nc, br)
	if br != nil {
		releaseHandshakeReader(br)
	}
	c.link, c.lastWriter = l, l.wmu
	c.addrs.Store(&addrPair{local: nc.LocalAddr(), remote: nc.RemoteAddr()})
	if c.client != nil {
		c.client.obeying = nil // a move asked for on an older link is settled by this one
		c.startPolicyLocked()
		if ps := c.client.ps; ps != nil {
			ps.attached()
		}
	}
	l.start()
	if c.holder != holderNone {
		// The token's holder still reads the link the session left: it
		// comes over to this one now, not when that link fails.
		c.holderLink.setReadDeadlineLocked(pastDeadline)
	}
	if c.readWaiting.Load() {
		// A Read waits: it takes the token on this link itself when the
		// signal below wakes it, with no background reader to start and
		// then interrupt (read_token.go).
		c.tokenLeft.Store(true)
	} else {
		c.wakeReaderLocked()
	}
	signal(c.readable) // a waiting Read may read the new link itself
	signal(c.writable) // the resume may have released retained output
	return l
}

// linkDown is called once by a link that died. A stale link is ignored.
func (c *Conn) linkDown(l *link, cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link != l || c.ended {
		return
	}
	c.link = nil
	if c.role == roleServer && c.finishedLocked() {
		c.terminateLocked(nil)
		return
	}
	if logOn(c.log, slog.LevelInfo) {
		c.log.Info("mtcp: link lost", "cause", cause)
	}
	switch c.role {
	case roleClient:
		cs := c.client
		cs.wakeMarkWaitersLocked() // a Migrate waiting on this link
		if m := cs.moving; m != nil {
			// The move under way resumes the session (or, if it fails,
			// reconnects it); the session stands still from now.
			m.linkLostLocked(cs.d.ResumeTimeout)
			return
		}
		cs.startReconnect(c, cause, time.Now())
	case roleServer:
		c.server.detached(c, cause)
	}
}

// finishedLocked reports whether the session has nothing left to exchange:
// this side's output is settled (delivered, or the peer reads no more), its
// input is settled (the peer ended, or this side reads no more), and the peer
// has been told that its end was seen (or, having closed and acknowledged
// our CLOSE, is finished without it).
func (c *Conn) finishedLocked() bool {
	st := c.st
	outSettled := st.OutputDone() || st.PeerEnd() == stream.Closed
	inSettled := st.PeerEnd() != stream.Open || st.OutputEnd() == stream.Closed
	if !outSettled || !inSettled {
		return false
	}
	// The peer must learn that its end arrived, unless it needs not: a
	// peer that closed and acknowledged our CLOSE is finished already.
	return st.PeerEnd() == stream.Open || st.PeerEndTold() ||
		(st.PeerEnd() == stream.Closed && st.OutputDone())
}

// maybeFinishLocked ends a finished session on the client, which closes the
// link; the server waits for that close (or its detach timeout).
func (c *Conn) maybeFinishLocked() { c.finishLocked(false) }

// finishLocked ends a finished client session unless frames are still to
// be written; holdsWriter says the caller holds the link's writer lock
// (a flush that has written everything).
func (c *Conn) finishLocked(holdsWriter bool) {
	if c.role != roleClient || c.ended || !c.finishedLocked() {
		return
	}
	l := c.link
	if l == nil {
		c.terminateLocked(nil)
		return
	}
	if c.st.CanSend() {
		return
	}
	if !holdsWriter {
		if !l.wmu.TryLock() {
			return // the flush in progress finishes the session after its write
		}
		defer l.wmu.Unlock()
	}
	c.terminateLocked(nil)
}

// failLocked ends the session with an error that says why.
func (c *Conn) failLocked(reason error) {
	if c.ended {
		return
	}
	err := &SessionLostError{SessionID: c.idStr, Reason: reason}
	c.log.Warn("mtcp: session lost", "reason", reason)
	c.terminateLocked(err)
}

func (c *Conn) fail(reason error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(reason)
}

// abortLocked fails the session because of a local finding (protocol
// violation, position not retained) and tells the peer why.
func (c *Conn) abortLocked(reason error) {
	if l := c.link; l != nil {
		c.link = nil // sendAbort shuts the link down once the ABORT is out
		go l.sendAbort(codeOf(reason), reason.Error())
	}
	c.failLocked(reason)
}

// terminateLocked ends the session: err nil means it finished cleanly.
func (c *Conn) terminateLocked(err error) {
	if c.ended {
		return
	}
	c.ended, c.err = true, err
	c.discardOutputLocked()
	if err == nil && logOn(c.log, slog.LevelDebug) {
		c.log.Debug("mtcp: session finished")
	}
	c.params.metrics.SessionEnded(err != nil && !errors.Is(err, ErrMigrated))
	if l := c.link; l != nil {
		c.link = nil
		l.shutdown()
	}
	if c.linger != nil {
		c.linger.Stop()
	}
	if c.server != nil {
		c.server.forgetEnded(c)
	}
	if c.client != nil && c.client.ps != nil {
		c.client.ps.check.stop()
	}
	close(c.endedCh)
	if c.endCancel != nil {
		c.endCancel()
	}
	signal(c.readable)
	signal(c.writable)
}

// endedContextLocked (c.mu held) returns a context that is cancelled when
// the session ends (already, if it has).
func (c *Conn) endedContextLocked() context.Context {
	if c.endCtx == nil {
		c.endCtx, c.endCancel = context.WithCancel(context.Background())
		if c.ended {
			c.endCancel()
		}
	}
	return c.endCtx
}

// discardOutputLocked gives back the memory of the retained output of an
// ended session, once no write of the newest link reads it anymore.
func (c *Conn) discardOutputLocked() {
	w := c.lastWriter
	if w == nil || w.TryLock() {
		c.st.DiscardOutput()
		if w != nil {
			w.Unlock()
		}
		return
	}
	go func() { // a flush is under way: the link is shut, so it ends soon
		w.Lock()
		defer w.Unlock()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.st.DiscardOutput()
	}()
}

// noteAckLocked tells the peer about consumed input at once when a quarter
// of the window has opened; smaller progress rides on the next frame out, or
// goes at the link's next check, within half a keepalive interval.
func (c *Conn) noteAckLocked() {
	if c.link == nil {
		return
	}
	if urgent, dirty := c.st.AckDue(); urgent {
		c.link.kickNow()
	} else if dirty {
		c.link.checkSoon()
	}
}

// sessionErrLocked is the error Read and Write report once the session ended.
func (c *Conn) sessionErrLocked() error {
	if c.err != nil {
		return c.err
	}
	return net.ErrClosed
}

// Done returns a channel that is closed when the session has ended: it
// finished (both ends closed and every byte delivered), moved to another
// member, or was lost; Err then says which. After Close, the session ends
// once its last bytes are delivered, in the background.
func (c *Conn) Done() <-chan struct{} { return c.endedCh }

// Err returns why the session ended: nil while it runs or if it finished
// cleanly, a *SessionMovedError if it moved to another member, a
// *SessionLostError if it was lost.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
