package mtcp

import (
	"io"
	"time"

	"github.com/migratory/mtcp/internal/stream"
	"github.com/migratory/mtcp/internal/wire"
)

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
// writer side is free and no write deadline is set, else through the send
// loop. A direct send that a write deadline or Close catches blocked in the
// socket is interrupted (interruptWrite): the link fails and the session
// resumes, with the bytes retained.
func (l *link) flushFromWrite() {
	c := l.c
	if !c.wrDeadline.isSet() && l.wmu.TryLock() {
		l.dmu.Lock()
		l.direct = true
		l.dmu.Unlock()
		// A deadline set or a Close after this point finds the direct send
		// (interruptWrite); one set before it is seen here.
		if !c.wrDeadline.isSet() && !isClosed(c.closedCh) {
			l.flushLocked()
		} else {
			l.kickNow()
		}
		l.dmu.Lock()
		l.direct = false
		if l.interrupted {
			l.interrupted = false
			_ = l.nc.SetWriteDeadline(time.Time{})
		}
		l.dmu.Unlock()
		l.wmu.Unlock()
		return
	}
	l.kickNow()
}

// interruptWrite bounds a direct send in progress by t (a write deadline
// set, or the past for Close).
func (l *link) interruptWrite(t time.Time) {
	l.dmu.Lock()
	defer l.dmu.Unlock()
	if l.direct {
		l.interrupted = true
		_ = l.nc.SetWriteDeadline(t)
	}
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
			c.finishLocked(true)
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
	l.poolFramesLocked()
	if _, dirty := st.AckDue(); dirty {
		l.bufs = append(l.bufs, wire.AppendFrame(hdr(0), st.MakeAck()))
	}
	{
		for total := 0; total < maxBatch && frames < maxBatchFrames-3; {
			if m, ok := st.NextMark(); ok {
				l.bufs = append(l.bufs, wire.AppendFrame(hdr(0), m))
				continue
			}
			h := (*[16]byte)(hdr(16))
			at := len(l.bufs)
			l.bufs = append(l.bufs, h[:])
			seq, n, pieces := st.NextData(wire.MaxPayload, l.bufs)
			if n == 0 {
				l.bufs = l.bufs[:at]
				frames--
				break
			}
			l.bufs = pieces
			wire.PutDataHeader(h, seq, n)
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
	return len(l.bufs)
}

// writeBatch (wmu held, c.mu not held) writes l.bufs to the connection.
func (l *link) writeBatch() error {
	if l.writev && len(l.bufs) > 1 && l.batchSize() > smallBatch {
		_, err := l.bufs.WriteTo(l.nc)
		return err
	}
	// Coalesce small pieces so that TLS records and pipe writes are not tiny,
	// and small batches go out with write(2) rather than writev(2).
	if l.scratch == nil {
		l.scratch = make([]byte, 0, scratchSize)
	}
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

// abortLinger bounds how long a link that sent ABORT waits for its peer to
// read it and close.
const abortLinger = time.Second

// sendAbort tells the peer the session failed, best effort, then closes.
// Closing a socket with unread data in it resets the connection, and a
// reset can destroy the ABORT before the peer reads it: so the link
// half-closes and discards what the peer still sends until it closes too
// (or abortLinger passes), then closes.
func (l *link) sendAbort(code wire.Code, reason string) {
	// The deadline also frees a flush blocked on a stuck connection.
	_ = l.nc.SetWriteDeadline(time.Now().Add(abortLinger))
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_, err := l.nc.Write(wire.AppendFrame(nil, wire.Abort{Code: code, Reason: reason}))
	if err == nil {
		if cw, ok := l.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_ = l.nc.SetReadDeadline(time.Now().Add(abortLinger))
		_, _ = io.Copy(io.Discard, l.nc)
	}
	l.shutdown()
}

// smallBatch is the size below which a batch is copied into one buffer.
const smallBatch = 4 << 10

func (l *link) batchSize() int {
	n := 0
	for _, b := range l.bufs {
		n += len(b)
	}
	return n
}
