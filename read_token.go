package mtcp

import (
	"errors"
	"os"
	"time"

	"github.com/migratory/mtcp/internal/stream"
)

// The read token. One goroutine at a time reads a session's link: a Read
// that found nothing buffered reads the socket itself, so that data goes
// straight from the socket into its buffer with no hand-over between
// goroutines; while no Read is waiting, a background reader keeps taking
// acknowledgements, pings and ends of stream off the link. A Read that
// wants the token from the background reader interrupts it with a past
// read deadline on the link; the background reader takes the token back
// at the link's next check (within half a keepalive interval) if no Read
// holds it, or at once when a Write or Close needs acknowledgements. The
// background reader is a goroutine only while it holds the token: it ends
// when it yields, and is started again when needed. A link attached while a
// Read waits (the session had none: a move, a resume) is left to that Read,
// which reads it when it wakes; one that returns without reading it starts
// the background reader (leaveRead), as does one that asked the background
// reader for the token and returns before taking it.

type holderKind uint8

const (
	holderNone holderKind = iota
	holderApp
	holderBackground
)

var pastDeadline = time.Unix(1, 0)

// wakeReaderLocked (c.mu held) makes the background reader take the token
// now if nobody holds it, starting it if it does not run.
func (c *Conn) wakeReaderLocked() {
	if c.link == nil || c.ended {
		c.tokenLeft.Store(false)
		return
	}
	if c.holder != holderNone || c.bgRunning {
		// Someone reads, maybe the link the session left: a link left
		// to a Read (tokenLeft) stays so until one takes the token on
		// it, or a Read leaving starts the background reader.
		return
	}
	c.tokenLeft.Store(false)
	c.bgRunning = true
	c.bgStarts++
	go c.backgroundReader()
}

// readDirect is Read's path when nothing is buffered (c.mu held on entry
// and return): take the token and read the link until bytes arrive. It
// returns the bytes put in p, and again when Read should look again at
// once (bytes were buffered, a deadline passed, the link broke) rather than
// wait for a signal (no link yet, the background reader is yielding).
func (c *Conn) readDirect(p []byte) (n int, again bool) {
	l := c.link
	if l == nil {
		return 0, false
	}
	switch c.holder {
	case holderBackground:
		if !c.appWants {
			c.appWants = true
			// The background reader yields; it may still read a link the
			// session has left, which this interrupts, not the new one.
			c.holderLink.setReadDeadlineLocked(pastDeadline)
		}
		return 0, false
	case holderApp:
		return 0, false
	}
	c.holder, c.holderLink = holderApp, l
	c.tokenLeft.Store(false)
	l.setReadDeadlineLocked(c.rdDeadline.get())
	c.mu.Unlock()
	var err error
	for {
		var ringed bool
		n, ringed, err = l.readStep(p)
		if n > 0 || ringed || err != nil {
			break
		}
	}
	c.mu.Lock()
	c.holder, c.holderLink = holderNone, nil
	if c.moveWaitsLocked() && c.link != nil {
		c.link.kickNow() // the MOVE waited for this Read to let go (holdLocked)
	}
	switch {
	case l != c.link && c.link != nil:
		// A new link came while this Read read the old one (its attach
		// found the token held): this Read reads it when it looks again,
		// at once, or starts the background reader if it returns first
		// (leaveRead).
		c.tokenLeft.Store(true)
	case c.wantsAcks || c.closed || c.st.OutputEnd() != stream.Open:
		// Acknowledgements are awaited (a Write's room, the end of the
		// session): the background reader takes over now, not at the
		// next keepalive tick.
		c.wakeReaderLocked()
	default:
		l.checkSoon() // the background reader takes over if no Read does
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.mu.Unlock()
		l.readFailed(err)
		c.mu.Lock()
	}
	return n, true
}

// interruptAppReaderLocked (c.mu held) makes a Read blocked on the link
// look at the session again (after Close or a new read deadline).
func (c *Conn) interruptAppReaderLocked(t time.Time) {
	if c.holder == holderApp {
		c.holderLink.setReadDeadlineLocked(t)
	}
}

// backgroundReader reads the link while no Read does, and ends when a
// Read takes the token or the link is gone.
func (c *Conn) backgroundReader() {
	for c.backgroundRound() {
	}
}

// backgroundRound holds the token for as long as no Read asks for it and
// reports whether it should go again at once.
func (c *Conn) backgroundRound() bool {
	c.mu.Lock()
	l := c.link
	if l == nil || c.ended || c.holder != holderNone {
		c.bgRunning = false
		c.mu.Unlock()
		return false
	}
	c.holder, c.holderLink, c.appWants = holderBackground, l, false
	c.tokenLeft.Store(false) // the link is read
	l.setReadDeadlineLocked(time.Time{})
	c.mu.Unlock()
	var err error
	for {
		if _, _, err = l.readStep(nil); err != nil {
			break
		}
	}
	c.mu.Lock()
	c.holder, c.holderLink = holderNone, nil
	yield := c.appWants
	c.appWants = false
	timeout := errors.Is(err, os.ErrDeadlineExceeded)
	// A link the session has left fails or times out under the reader
	// once a new one is attached: the token goes on to the new link.
	moved := c.link != nil && c.link != l
	again := !yield && (timeout || moved)
	if !again {
		c.bgRunning = false
	}
	c.mu.Unlock()
	if yield {
		// The waiting Read takes the token, whatever ended this round:
		// it asked, and waits for this signal alone.
		signal(c.readable)
	}
	if !timeout {
		l.readFailed(err)
	}
	return again
}
