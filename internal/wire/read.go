package wire

import (
	"fmt"
	"io"
)

// ReadFrame reads one whole frame from r. The body is read into buf when it
// fits, else into a new slice no larger than the type's maximum; the returned
// frame may alias that memory. Use it off the hot path (handshakes, tests).
func ReadFrame(r io.Reader, buf []byte) (Frame, error) {
	var hb [HeaderLen]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return nil, err
	}
	h, err := ParseHeader(hb[:])
	if err != nil {
		return nil, err
	}
	body := buf
	if uint32(cap(body)) < h.Length {
		body = make([]byte, h.Length)
	}
	body = body[:h.Length]
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading %v body: %w", h.Type, err)
	}
	return Decode(h, body)
}
