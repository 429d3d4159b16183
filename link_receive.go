package mtcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/migratory/mtcp/internal/stream"
	"github.com/migratory/mtcp/internal/wire"
)

// frameState is where a link's reader is within the incoming frames. It
// survives a read that stops early (a deadline, a hand-over of the read
// token), so that any holder of the token can take up where the last left off.
type frameState struct {
	skip int // bytes to discard: duplicate DATA bytes or an extension body
	data int // new DATA bytes still to read

	// A control frame too large for the read buffer (a long MEMBERS list),
	// read into its own buffer.
	bigHeader wire.Header
	big       []byte
	bigN      int
}

// linkError marks I/O failures of the link, as opposed to protocol errors.
// Its text says what the link was doing (op) when err came; it is made only
// when asked for: most end a session quietly, when the peer closes.
type linkError struct {
	op  string
	err error
}

func (e *linkError) Error() string { return e.op + ": " + e.err.Error() }
func (e *linkError) Unwrap() error { return e.err }

func isLinkError(err error) bool {
	var le *linkError
	return errors.As(err, &le)
}

// readError classifies an I/O error: timeouts pass through (the read may be
// taken up again), anything else is a broken link.
func readError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &linkError{op: "reading from link", err: err}
}

// readStep reads one step of the incoming frames: a whole control frame, a
// DATA frame's header, or a piece of a DATA payload. Payload bytes go into
// dst when dst is given and nothing is buffered before them (the caller is a
// Read holding the read token); it returns how many. ringed reports bytes
// added to the input buffer. The caller holds the read token.
func (l *link) readStep(dst []byte) (direct int, ringed bool, err error) {
	fs := &l.fs
	if fs.skip > 0 {
		k, err := l.rd.Discard(fs.skip)
		fs.skip -= k
		if err != nil {
			return 0, false, readError(err)
		}
		return 0, false, nil
	}
	if fs.data > 0 {
		return l.readPayload(dst)
	}
	if fs.big != nil {
		n, err := l.rd.Read(fs.big[fs.bigN:])
		fs.bigN += n
		if fs.bigN < len(fs.big) {
			if err != nil {
				return 0, false, readError(err)
			}
			return 0, false, nil
		}
		h, b := fs.bigHeader, fs.big
		fs.big, fs.bigN = nil, 0
		ringed, err := l.handleControl(h, b)
		return 0, ringed, err
	}
	hb, err := l.rd.Peek(wire.HeaderLen)
	if err != nil {
		return 0, false, readError(err)
	}
	h, err := wire.ParseHeader(hb)
	if err != nil {
		return 0, false, err
	}
	switch {
	case h.Type == wire.TypeData:
		b, err := l.rd.Peek(wire.HeaderLen + 8)
		if err != nil {
			return 0, false, readError(err)
		}
		seq := binary.BigEndian.Uint64(b[wire.HeaderLen:])
		n := int(h.Length) - 8
		c := l.c
		c.mu.Lock()
		if c.link != l {
			c.mu.Unlock()
			return 0, false, errStaleLink
		}
		skip, err := c.st.BeginData(seq, n)
		if err != nil {
			c.mu.Unlock()
			return 0, false, err
		}
		_, _ = l.rd.Discard(wire.HeaderLen + 8) // peeked: cannot fail
		fs.skip, fs.data = skip, n-skip
		k := l.takeBufferedLocked(dst)
		c.mu.Unlock()
		return k, false, nil
	case h.Type.IsExtension():
		_, _ = l.rd.Discard(wire.HeaderLen)
		fs.skip = int(h.Length)
		return 0, false, nil
	case int(h.Length) > readBufferSize-wire.HeaderLen:
		if h.Type != wire.TypeMembers {
			return 0, false, fmt.Errorf("%w: unexpected %v on an established link", ErrProtocol, h.Type)
		}
		_, _ = l.rd.Discard(wire.HeaderLen)
		fs.bigHeader, fs.big, fs.bigN = h, make([]byte, h.Length), 0
		return 0, false, nil
	}
	b, err := l.rd.Peek(wire.HeaderLen + int(h.Length))
	if err != nil {
		return 0, false, readError(err)
	}
	ringed, err = l.handleControl(h, b[wire.HeaderLen:])
	_, _ = l.rd.Discard(len(b))
	return 0, ringed, err
}

// readPayload reads a piece of the current DATA frame's new bytes.
func (l *link) readPayload(dst []byte) (int, bool, error) {
	fs := &l.fs
	c := l.c
	c.mu.Lock()
	if c.link != l {
		c.mu.Unlock()
		return 0, false, errStaleLink
	}
	if k := l.takeBufferedLocked(dst); k > 0 {
		c.mu.Unlock()
		return k, false, nil
	}
	if len(dst) > 0 && c.st.Buffered() == 0 && !c.closed {
		// Straight into the reader's buffer: no copy through the input buffer.
		c.mu.Unlock()
		n, err := l.rd.Read(dst[:min(len(dst), fs.data)])
		if n > 0 {
			if err := l.gotPayload(dst[:n], true); err != nil {
				return 0, false, err
			}
		}
		if err != nil {
			return n, false, readError(err)
		}
		return n, false, nil
	}
	a, _ := c.st.Reserve(fs.data)
	c.mu.Unlock()
	n, err := l.rd.Read(a)
	if n > 0 {
		if err := l.gotPayload(a[:n], false); err != nil {
			return 0, false, err
		}
	} else {
		c.mu.Lock()
		c.st.Commit(0) // the reservation is abandoned: its chunks may go
		c.mu.Unlock()
	}
	if err != nil {
		return 0, n > 0, readError(err)
	}
	return 0, n > 0, nil
}

// gotPayload counts p, just read off the link, as received: handed straight
// to the Read that reads the link (direct), or committed to the input
// buffer.
func (l *link) gotPayload(p []byte, direct bool) error {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link != l {
		// The session moved on (its positions were told to a new link):
		// bytes of the old one count for nothing.
		l.fs.data -= len(p)
		return errStaleLink
	}
	l.gotPayloadLocked(p, direct)
	return nil
}

// takeBufferedLocked (c.mu held, c.link == l) gives a Read the current DATA
// frame's new bytes that the frame reader holds already: copied into dst
// and counted as delivered under one hold of the lock. It returns 0, taking
// nothing, when there is no dst, when bytes wait in the input buffer
// (they go first), or when the frame reader holds none of the payload.
func (l *link) takeBufferedLocked(dst []byte) int {
	c := l.c
	if len(dst) == 0 || l.fs.skip > 0 || l.fs.data == 0 || l.rd.Buffered() == 0 ||
		c.st.Buffered() != 0 || c.closed {
		return 0
	}
	n, _ := l.rd.Read(dst[:min(len(dst), l.fs.data)]) // buffered: a copy
	l.gotPayloadLocked(dst[:n], true)
	return n
}

// gotPayloadLocked (c.mu held, c.link == l) is gotPayload past its check.
func (l *link) gotPayloadLocked(p []byte, direct bool) {
	c := l.c
	l.fs.data -= len(p)
	c.receivedLocked(p)
	if direct {
		c.st.Deliver(len(p))
	} else {
		c.st.Commit(len(p))
		if c.closed {
			c.st.DiscardInput() // nobody will read it
		}
		signal(c.readable)
	}
	c.updateReleaseLocked()
	c.noteAckLocked()
}

// handleControl applies a control frame. It reports whether the frame made
// something readable (an end of stream).
func (l *link) handleControl(h wire.Header, b []byte) (readable bool, err error) {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link != l {
		return false, errStaleLink
	}
	st := c.st
	switch h.Type {
	case wire.TypeAck:
		if err := st.OnAck(wire.ParseAck(h, b)); err != nil {
			return false, err
		}
		c.advanceDurableLocked()
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
			return false, err
		}
		c.updateReleaseLocked() // the application may have read all before it
		signal(c.readable)
		l.kickNow() // acknowledge the end at once
		return true, nil
	case wire.TypeMembers, wire.TypeMove, wire.TypeMark, wire.TypeVerify:
		return false, c.handlePoolFrameLocked(l, h, b)
	case wire.TypeAbort:
		f, err := wire.Decode(h, b)
		if err != nil {
			return false, err
		}
		a := f.(wire.Abort)
		c.failLocked(&PeerError{Code: ErrorCode(a.Code), Reason: a.Reason})
		return true, errStaleLink
	default:
		return false, fmt.Errorf("%w: unexpected %v on an established link", ErrProtocol, h.Type)
	}
	return false, nil
}

// readFailed handles an error from readStep (not a timeout): the link is
// broken, stale, or the peer broke the protocol and the session is aborted.
func (l *link) readFailed(err error) {
	switch {
	case errors.Is(err, errStaleLink):
	case isLinkError(err):
		l.fail(err)
	default:
		c := l.c
		c.mu.Lock()
		if c.link == l {
			c.abortLocked(localError(err))
		}
		c.mu.Unlock()
	}
}
