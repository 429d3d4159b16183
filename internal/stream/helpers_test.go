package stream

import "bytes"

// nextData is NextData with the pieces joined: the bytes, and nil.
func (s *Stream) nextData(limit int) (seq uint64, p, none []byte) {
	seq, _, pieces := s.NextData(limit, nil)
	return seq, bytes.Join(pieces, nil), nil
}
