package mtcp

import (
	"bufio"
	"net"
	"sync"
)

// quietRead is how much a link's reader asks for when its last read found
// little: a quiet link waits for its next frame in a small array of its
// own, not in a buffer.
const quietRead = 64

// frameReader buffers a link's incoming bytes the way bufio.Reader does,
// but holds a buffer only while bytes are in it: the buffer is taken from
// readBuffers when bytes arrive and given back as soon as they are all
// consumed. A link that found little on its last read waits for the next
// bytes in a small array (quiet), so that a quiet link holds no buffer;
// one that found much reads into a buffer at once. Reads of a payload
// with nothing buffered go straight to their destination.
type frameReader struct {
	nc    net.Conn
	buf   *[]byte // nil while nothing is buffered
	r, w  int     // the buffered bytes are (*buf)[r:w]
	busy  bool    // the last read filled the quiet array: more is likely coming
	quiet [quietRead]byte
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
	f.take()
	f.w = copy(*f.buf, ahead)
	if f.w < len(ahead) {
		// More than a buffer read ahead (the handshake's reader is larger):
		// keep them all.
		b := append([]byte(nil), ahead...)
		f.buf, f.w = &b, len(b)
	}
}

func (f *frameReader) take() {
	f.buf = readBuffers.Get().(*[]byte)
	f.r, f.w = 0, 0
}

// consume drops k buffered bytes and gives the buffer back once empty.
func (f *frameReader) consume(k int) {
	f.r += k
	if f.r == f.w {
		if len(*f.buf) == readBufferSize {
			readBuffers.Put(f.buf)
		}
		f.buf, f.r, f.w = nil, 0, 0
	}
}

// Buffered is how many bytes are buffered.
func (f *frameReader) Buffered() int { return f.w - f.r }

// fill reads once more into the buffer, taking one if need be.
func (f *frameReader) fill() error {
	if f.buf == nil && !f.busy {
		k, err := f.nc.Read(f.quiet[:])
		if k > 0 {
			f.take()
			f.w = copy(*f.buf, f.quiet[:k])
		}
		f.busy = k == len(f.quiet)
		return err
	}
	if f.buf == nil {
		f.take()
	} else if f.r > 0 {
		f.w = copy(*f.buf, (*f.buf)[f.r:f.w])
		f.r = 0
	}
	k, err := f.nc.Read((*f.buf)[f.w:])
	f.w += k
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
	return (*f.buf)[f.r : f.r+n], nil
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
		k, err := f.nc.Read(p)
		if k > 0 {
			f.busy = k >= len(f.quiet)
		}
		return k, err
	}
	k := copy(p, (*f.buf)[f.r:f.w])
	f.consume(k)
	return k, nil
}
