package stream

import "github.com/migratory/mtcp/internal/wire"

// AddMark records a checkpoint at the current output position, to be
// announced to the peer in order when the output before it has been sent.
func (s *Stream) AddMark(seq, inPos uint64) {
	s.marks = append(s.marks, wire.Mark{Seq: seq, Out: s.out.end(), In: inPos})
}

// NextMark returns the mark due now: its position is reached by what was sent.
func (s *Stream) NextMark() (wire.Mark, bool) {
	for s.nextMark < len(s.marks) && !s.held {
		m := s.marks[s.nextMark]
		if m.Out > s.sent {
			return wire.Mark{}, false
		}
		s.nextMark++
		if m.Out == s.sent {
			return m, true
		}
	}
	return wire.Mark{}, false
}

// pruneMarks drops marks the peer is known to have passed.
func (s *Stream) pruneMarks() {
	i := 0
	for i < len(s.marks) && s.marks[i].Out < s.out.start {
		i++
	}
	if i > 0 {
		s.marks = append(s.marks[:0], s.marks[i:]...)
		s.nextMark = max(0, s.nextMark-i)
	}
}

// resendMarksFrom makes marks at or after pos due again (after a resume).
func (s *Stream) resendMarksFrom(pos uint64) {
	s.nextMark = len(s.marks)
	for i, m := range s.marks {
		if m.Out >= pos {
			s.nextMark = i
			break
		}
	}
}
