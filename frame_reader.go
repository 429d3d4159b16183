package mtcp

import (
	"bufio"
	"net"
	"sync"
)

// quietRead is how much a quiet link's reader asks for: small frames
// (acknowledgements, pings, short messages) fit in it whole.
const quietRead = 256

// frameReader buffers a link's incoming bytes the way bufio.Reader does,
// but holds a buffer only while bytes are in it. A link that found little
// on its last read waits for the next bytes in a small array of its own
// (quiet), and takes a buffer from readBuffers only when a frame does not
// fit there; a link that found much reads into a pooled buffer at once.
// The buffer goes back as soon as its bytes are consumed, so a quiet link
// holds none. Reads of a payload with nothing buffered go straight to their
// destination.
type frameReader struct {
	nc     net.Conn
	buf    []byte  // the buffered bytes are buf[r:w]; nil while none are
	r, w   int     //
	pooled *[]byte // the pooled buffer buf is (nil: buf is quiet)
	busy   bool    // the last read into the buffer filled quiet's size: more is likely coming
	heard  func()  // called after each read that got bytes off the connection (nil: none)
	quiet  [quietRead]byte
}

var readBuffers = sync.Pool{New: func() any {
	b := make([]byte, readBufferSize)
	return &b
}}

// init sets the reader up on nc, with the bytes a handshake's reader br
// (nil: none) read ahead.
func (f *frameReader) init(nc net.Conn, br *bufio.Reader) {
	f.nc = nc
	if br == nil || br.Buffered() == 0 {
		return
	}
	ahead, _ := br.Peek(br.Buffered())
	if len(ahead) <= len(f.quiet) {
		f.buf, f.w = f.quiet[:], copy(f.quiet[:], ahead)
		return
	}
	f.take()
	if len(ahead) > len(f.buf) { // a handshake reader larger than ours
		f.pooled, f.buf = nil, make([]byte, len(ahead))
	}
	f.w = copy(f.buf, ahead)
}

// gotBytes tells heard that bytes came off the connection.
func (f *frameReader) gotBytes() {
	if f.heard != nil {
		f.heard()
	}
}

// take makes an empty pooled buffer the reader's buffer.
func (f *frameReader) take() {
	f.pooled = readBuffers.Get().(*[]byte)
	f.buf, f.r, f.w = *f.pooled, 0, 0
}

// consume drops k buffered bytes and lets the buffer go once it is empty.
func (f *frameReader) consume(k int) {
	f.r += k
	if f.r < f.w {
		return
	}
	if f.pooled != nil {
		readBuffers.Put(f.pooled)
	}
	f.buf, f.pooled, f.r, f.w = nil, nil, 0, 0
}

// Buffered is how many bytes are buffered.
func (f *frameReader) Buffered() int { return f.w - f.r }

// fill reads once more into the buffer, taking one if need be.
func (f *frameReader) fill() error {
	switch {
	case f.buf == nil && !f.busy:
		k, err := f.nc.Read(f.quiet[:])
		if k > 0 {
			f.buf, f.r, f.w = f.quiet[:], 0, k
			f.gotBytes()
		}
		f.busy = k == len(f.quiet)
		return err
	case f.buf == nil:
		f.take()
	case f.pooled == nil: // the bytes in quiet need more after them
		ahead := f.buf[f.r:f.w]
		f.take()
		f.w = copy(f.buf, ahead)
	case f.r > 0:
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	k, err := f.nc.Read(f.buf[f.w:])
	f.w += k
	if k > 0 {
		f.gotBytes()
	}
	f.busy = k >= len(f.quiet)
	if f.w == 0 {
		f.consume(0) // nothing came: the buffer goes back
	}
	return err
}

// Peek returns the next n bytes (n at most readBufferSize) without
// consuming them; they stay valid until the next call.
func (f *frameReader) Peek(n int) ([]byte, error) {
	for f.Buffered() < n {
		if err := f.fill(); err != nil && f.Buffered() < n {
			return nil, err
		}
	}
	return f.buf[f.r : f.r+n], nil
}

// Discard skips n bytes and reports how many it skipped.
func (f *frameReader) Discard(n int) (int, error) {
	done := 0
	for done < n {
		if f.Buffered() == 0 {
			if err := f.fill(); err != nil && f.Buffered() == 0 {
				return done, err
			}
		}
		k := min(n-done, f.Buffered())
		f.consume(k)
		done += k
	}
	return done, nil
}

// Read reads up to len(p) bytes: buffered ones, or straight from the
// connection when none are.
func (f *frameReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if f.Buffered() == 0 {
		n, err := f.nc.Read(p)
		if n > 0 {
			f.gotBytes()
		}
		return n, err
	}
	k := copy(p, f.buf[f.r:f.w])
	f.consume(k)
	return k, nil
}
