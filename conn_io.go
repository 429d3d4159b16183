package mtcp

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/migratory/mtcp/internal/stream"
)

// SessionID returns the session's id, the same on both ends, as 32 hex digits.
func (c *Conn) SessionID() string { return c.idStr }

// LocalAddr returns the local address of the session's current (or last) link.
func (c *Conn) LocalAddr() net.Addr { return c.addrs.Load().local }

// RemoteAddr returns the remote address of the session's current (or last)
// link; on a client it changes when the session resumes elsewhere.
func (c *Conn) RemoteAddr() net.Addr { return c.addrs.Load().remote }

func (c *Conn) opError(op string, err error) error {
	a := c.addrs.Load()
	return &net.OpError{Op: op, Net: "mtcp", Source: a.local, Addr: a.remote, Err: err}
}

// Read reads incoming bytes. It blocks while none are buffered, including
// while the session is resuming on a new link. It returns io.EOF after the
// peer's CloseWrite or Close, once every byte before it was read.
func (c *Conn) Read(p []byte) (int, error) {
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	// asked: this Read asked the background reader to yield the token and
	// has not taken it since.
	asked := false
	defer func() { c.leaveRead(asked) }()
	for {
		if isClosed(c.closeCalled) {
			return 0, c.opError("read", net.ErrClosed)
		}
		dl := c.rdDeadline.wait()
		if isClosed(dl) {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		c.mu.Lock()
		if len(p) > 0 && c.heldLocked() {
			// Held at a checkpoint while the session moves (settle.go).
			c.whileHeldLocked()
			c.mu.Unlock()
			select {
			case <-c.readable:
			case <-dl:
			case <-c.closeCalled:
			}
			continue
		}
		if c.st.Readable() && !c.movedAwayLocked() {
			n, err := c.st.Read(p)
			if n > 0 {
				if c.st.PeerEnd() != stream.Open {
					c.updateReleaseLocked() // the end of the input may be reached
				}
				c.noteAckLocked()
			}
			c.mu.Unlock()
			return n, err // err is nil or io.EOF, which must not be wrapped
		}
		if c.ended {
			err := c.sessionErrLocked()
			c.mu.Unlock()
			return 0, c.opError("read", err)
		}
		if len(p) == 0 {
			c.mu.Unlock()
			return 0, nil
		}
		n, again := c.readDirect(p) // acknowledgements are noted as bytes arrive
		if n == 0 && !again {
			c.readWaiting.Store(true)
		}
		asked = n == 0 && !again && c.appWants
		c.mu.Unlock()
		if n > 0 {
			return n, nil
		}
		if again {
			continue
		}
		select {
		case <-c.readable:
		case <-dl:
		case <-c.closeCalled:
		}
		// Under c.mu: an attach that saw this Read waiting (and left the
		// link to it, tokenLeft) holds c.mu until it has said so, and
		// the Read, however it leaves, sees it.
		c.mu.Lock()
		c.readWaiting.Store(false)
		c.mu.Unlock()
	}
}

// leaveRead, as a Read returns, hands on what it leaves unread: a link
// attached while it waited (tokenLeft), or the token it asked the
// background reader to yield (asked), which the reader then keeps or takes
// up again rather than yield to nobody. Either way the link stays read.
func (c *Conn) leaveRead(asked bool) {
	if !asked && !c.tokenLeft.Load() {
		return
	}
	c.mu.Lock()
	if asked {
		c.appWants = false
	}
	if asked || c.tokenLeft.Load() {
		c.wakeReaderLocked()
	}
	c.mu.Unlock()
}

// Write writes p to the session. It returns once every byte is retained by
// the session (not when the peer has it); it blocks while the retention is
// full, including while the session is resuming on a new link.
func (c *Conn) Write(p []byte) (int, error) {
	c.wrMu.Lock()
	defer c.wrMu.Unlock()
	n := 0
	for {
		if isClosed(c.closeCalled) {
			return n, c.opError("write", net.ErrClosed)
		}
		dl := c.wrDeadline.wait()
		if isClosed(dl) {
			return n, c.opError("write", os.ErrDeadlineExceeded)
		}
		c.mu.Lock()
		if err := c.writeErrLocked(); err != nil {
			c.mu.Unlock()
			return n, c.opError("write", err)
		}
		if c.heldLocked() && len(p) > 0 {
			c.mu.Unlock() // held at a checkpoint while the session moves (settle.go)
			select {
			case <-c.writable:
			case <-dl:
			case <-c.closeCalled:
			}
			continue
		}
		k, err := c.st.Write(p[n:])
		var memWait <-chan struct{}
		again := false
		if errors.Is(err, stream.ErrNoMemory) && c.params.mem != nil {
			// Wait for memory given back from now on; some may have been
			// since the write failed: try once more.
			memWait = c.params.mem.wait()
			var k2 int
			k2, err = c.st.Write(p[n+k:])
			k += k2
			again = k2 > 0
		}
		if err != nil && !errors.Is(err, stream.ErrNoMemory) {
			err = localError(err)
			c.abortLocked(err)
			c.mu.Unlock()
			return n, c.opError("write", err)
		}
		n += k
		c.countTraffic(k)
		if k > 0 && c.link != nil {
			c.link.checkSoon() // the output awaits the peer now
		}
		if c.server != nil && c.server.verifyPending {
			c.checkRegeneratedLocked()
		}
		l := c.link
		c.mu.Unlock()
		if k > 0 && l != nil {
			l.flushFromWrite()
		}
		if n == len(p) {
			return n, nil
		}
		if again {
			continue
		}
		c.mu.Lock()
		c.wantsAcks = true
		c.wakeReaderLocked() // acknowledgements make room
		c.mu.Unlock()
		select {
		case <-c.writable:
		case <-memWait:
		case <-dl:
		case <-c.closeCalled:
		}
		c.mu.Lock()
		c.wantsAcks = false
		c.mu.Unlock()
	}
}

func (c *Conn) writeErrLocked() error {
	switch {
	case c.st.PeerEnd() == stream.Closed:
		return ErrPeerClosed
	case c.st.OutputEnd() != stream.Open:
		return ErrWriteClosed
	case c.ended:
		return c.sessionErrLocked()
	}
	return nil
}

// CloseWrite ends the outgoing direction: the peer reads io.EOF after every
// byte written before. Reading goes on. The end survives resumes. On a
// session restored from a checkpoint, the end is regenerated like the
// bytes: an end elsewhere than where the client saw it fails the session
// with ErrDiverged.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("close", net.ErrClosed)
	}
	if c.ended {
		return nil
	}
	if err := c.st.EndOutput(stream.HalfClosed); err != nil {
		err = localError(err)
		c.abortLocked(err)
		return c.opError("close", err)
	}
	c.wakeReaderLocked()
	signal(c.writable)
	if c.link != nil {
		c.link.kickNow()
	}
	return nil
}

// Close closes the session. Blocked Reads and Writes return an error
// wrapping net.ErrClosed. The bytes already written are still delivered in
// the background (resuming if need be) for up to the resume or detach
// timeout; the peer then reads io.EOF and its writes fail.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("close", net.ErrClosed)
	}
	c.closed = true
	close(c.closeCalled)
	c.interruptAppReaderLocked(pastDeadline)
	if c.link != nil {
		c.link.interruptWrite(pastDeadline)
	}
	if c.ended {
		return nil
	}
	c.wakeReaderLocked()
	if err := c.st.EndOutput(stream.Closed); err != nil {
		// The session fails: its client learns why. Closing succeeded.
		c.abortLocked(localError(err))
		return nil
	}
	c.st.DiscardInput()
	c.linger = time.AfterFunc(c.params.linger, func() { c.fail(ErrLingerTimeout) })
	if c.link != nil {
		c.link.kickNow()
	}
	c.maybeFinishLocked()
	return nil
}

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for pending and future Reads; a zero
// time means none.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.rdDeadline.set(t) {
		signal(c.readable) // a waiting Read takes the deadline's channel
	}
	c.mu.Lock()
	c.interruptAppReaderLocked(t)
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes; a zero
// time means none.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.wrDeadline.set(t) {
		signal(c.writable) // a waiting Write takes the deadline's channel
	}
	if !t.IsZero() {
		c.mu.Lock()
		if c.link != nil {
			c.link.interruptWrite(t)
		}
		c.mu.Unlock()
	}
	return nil
}
