package mtcp

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/migratory/mtcp/internal/stream"
	"github.com/migratory/mtcp/internal/wire"
)

// sendLoop writes whatever the session has for the link, for as long as
// it is kicked again while it writes, then ends: an idle link has no send
// loop (kickNow starts one).
func (l *link) sendLoop() {
	for l.send.CompareAndSwap(sendPending, sendRunning) {
		l.flush()
		if l.send.CompareAndSwap(sendRunning, sendIdle) {
			return
		}
	}
}

// flushFromWrite sends the bytes Write just retained: directly when the
// writer side is free, else through the send loop. A direct send runs
// under the session's write deadline, and one that a deadline set during it
// or Close catches blocked in the socket is interrupted (interruptWrite):
// the link fails and the session resumes, with the bytes retained. A
// deadline already passed leaves the bytes to the send loop, which sends
// with no deadline.
func (l *link) flushFromWrite() {
	c := l.c
	if !l.wmu.TryLock() {
		l.kickNow()
		return
	}
	l.dmu.Lock()
	direct := !isClosed(c.closeCalled)
	var t time.Time
	if direct && c.wrDeadline.isSet() {
		t = c.wrDeadline.get()
		direct = t.IsZero() || time.Until(t) > 0
	}
	if direct {
		l.direct = true
		l.putWriteDeadline(t)
	}
	l.dmu.Unlock()
	if direct && !isClosed(c.closeCalled) {
		l.flushHoldingWriter()
	} else {
		l.kickNow()
	}
	l.dmu.Lock()
	l.direct = false
	l.dmu.Unlock()
	l.wmu.Unlock()
}

// interruptWrite bounds a direct send in progress by t (a write deadline
// set, or the past for Close).
func (l *link) interruptWrite(t time.Time) {
	l.dmu.Lock()
	defer l.dmu.Unlock()
	if l.direct {
		l.putWriteDeadline(t)
	}
}

// putWriteDeadline (dmu held, not Conn.mu) puts t on the socket unless it is
// there already.
func (l *link) putWriteDeadline(t time.Time) {
	if t.Equal(l.writeDeadline) {
		return
	}
	l.writeDeadline = t
	_ = l.nc.SetWriteDeadline(t)
}

func (l *link) flush() {
	l.wmu.Lock()
	l.dmu.Lock()
	l.putWriteDeadline(time.Time{}) // left by a Write's direct send
	l.dmu.Unlock()
	l.flushHoldingWriter()
	l.wmu.Unlock()
}

// flushHoldingWriter (wmu held) sends batches of frames until nothing is left.
func (l *link) flushHoldingWriter() {
	l.takeBatch()
	defer l.putBatch()
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
		last := !l.moreDueLocked()
		c.mu.Unlock()
		if err := l.writeBatch(); err != nil {
			l.fail(err)
			return
		}
		if last {
			return
		}
	}
}

// moreDueLocked (c.mu held, after buildBatch) reports whether the flush
// must look again after writing the batch: frames left out of it (the batch
// was full), or a session that may finish once it is written. Whatever
// becomes due while the batch is written kicks the send loop.
func (l *link) moreDueLocked() bool {
	c := l.c
	st := c.st
	return st.CanSend() || l.pongDue || l.pingDue ||
		(c.role == roleClient && (st.OutputEnd() != stream.Open || st.PeerEnd() == stream.Closed))
}

// nothingDueLocked (c.mu held) reports whether the link has, for sure,
// nothing to send: no frame buildBatch would make, and no end of the
// session for the send loop to find (finishLocked). A link attached with
// nothing due (most moves and resumes of a quiet session, and most births)
// starts no send loop: one would start, find nothing and end. It must stay
// conservative: whatever buildBatch may send makes it false.
func (l *link) nothingDueLocked() bool {
	c := l.c
	st := c.st
	if l.pongDue || l.pingDue || c.closed || st.CanSend() ||
		st.OutputEnd() != stream.Open || st.PeerEnd() != stream.Open {
		return false
	}
	if _, dirty := st.AckDue(); dirty {
		return false
	}
	if s := c.server; s != nil && s.member != nil &&
		(s.member.MembersVersion() != s.membersVer || s.moveTo != nil && !s.moveSent) {
		return false
	}
	if cs := c.client; cs != nil && cs.verify != nil {
		return false
	}
	return true
}

// buildBatch (c.mu held) gathers the frames due into l.bufs and returns how
// many there are.
func (l *link) buildBatch() int {
	st := l.c.st
	l.bufs = l.bufs[:0]
	frames := 0
	hdr := func(n int) []byte {
		h := l.batch.hdrs[frames][:n]
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
	if len(l.bufs) > 0 && !l.wasBusy {
		l.checkSoon() // what was built may await the peer
	}
	return len(l.bufs)
}

// writeBatch (wmu held, c.mu not held) writes l.bufs to the connection.
func (l *link) writeBatch() error {
	size := l.batchSize()
	if size <= smallBatch {
		// One write(2) from the batch's own buffer.
		out := l.batch.small[:0]
		for _, b := range l.bufs {
			out = append(out, b...)
		}
		_, err := l.nc.Write(out)
		return err
	}
	if l.writev && len(l.bufs) > 1 {
		bufs := l.bufs // WriteTo consumes the slice it is called on
		_, err := bufs.WriteTo(l.nc)
		return err
	}
	// Without writev, coalesce the pieces so that TLS records and pipe
	// writes are not tiny, in a scratch buffer taken for this write only.
	scratch := scratches.Get().(*[]byte)
	defer scratches.Put(scratch)
	out := (*scratch)[:0]
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
	l.dmu.Lock()
	l.putWriteDeadline(time.Now().Add(abortLinger))
	l.dmu.Unlock()
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

// batch is what a flush needs to build its frames: slices of the frames and
// room for their headers. Flushes take one from batches and give it back,
// so that a quiet link holds none.
type batch struct {
	bufs  net.Buffers
	hdrs  [maxBatchFrames][32]byte
	small [smallBatch]byte // a small batch coalesced for one write
}

var (
	batches = sync.Pool{New: func() any {
		return &batch{bufs: make(net.Buffers, 0, 3*maxBatchFrames)}
	}}
	scratches = sync.Pool{New: func() any {
		b := make([]byte, scratchSize)
		return &b
	}}
)

// takeBatch (wmu held) gives the link a batch for a flush.
func (l *link) takeBatch() {
	l.batch = batches.Get().(*batch)
	l.bufs = l.batch.bufs[:0]
}

// putBatch (wmu held) gives the flush's batch back, holding no frames.
func (l *link) putBatch() {
	b := l.batch
	clear(l.bufs[:cap(l.bufs)])
	b.bufs, l.bufs, l.batch = l.bufs[:0], nil, nil
	batches.Put(b)
}
