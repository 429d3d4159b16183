package wire

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// ReadFrame reads one whole frame from r. The body is read into buf when it
// fits, else into a new slice no larger than the type's maximum; the returned
// frame may alias that memory. Use it off the hot path (tests, tools).
func ReadFrame(r io.Reader, buf []byte) (Frame, error) {
	h, err := readHeader(r)
	if err != nil {
		return nil, err
	}
	return readBody(r, h, buf)
}

// ReadFrameOf reads one frame that must be of one of the types given, as
// the steps of a handshake are. The type is checked from the header,
// before any of the body is read or allocated: a frame of another type
// costs the 8 bytes of its header (spec.md, section 3).
func ReadFrameOf(r io.Reader, types ...Type) (Frame, error) {
	h, err := readHeader(r)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(types, h.Type) {
		names := make([]string, len(types))
		for i, t := range types {
			names[i] = t.String()
		}
		return nil, fmt.Errorf("%w: %w: %v where %s was expected", ErrMalformed, ErrUnexpected, h.Type, strings.Join(names, " or "))
	}
	return readBody(r, h, nil)
}

func readHeader(r io.Reader) (Header, error) {
	var hb [HeaderLen]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return Header{}, err
	}
	return ParseHeader(hb[:])
}

func readBody(r io.Reader, h Header, buf []byte) (Frame, error) {
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
