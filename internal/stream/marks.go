package stream

import "github.com/migratory/mtcp/internal/wire"

// Checkpoint marks: the positions in the output at which the server
// application checkpointed, announced to the peer in order (MARK) so that it
// records its digest of the output there. There is at most one mark per
// output position: the peer's digest at a position does not depend on the
// input consumed there, so checkpoints taken without writing in between
// share one mark, the newest's.

// AddMark records a checkpoint at the current output position, to be
// announced to the peer in order when the output before it has been sent.
// A newer checkpoint at the position of the last mark replaces it; if that
// mark was announced already and the newer checkpoint covers other input,
// it is announced again: the peer keys its marks by position and learns the
// input the newer one covers, which an application that reads without
// writing moves forward with every checkpoint (the peer's input up to there
// may be freed, and only a mark tells the peer it can still resume). Marks
// due together go out once: a flush sends the newest.
func (s *Stream) AddMark(seq, inPos uint64) {
	m := wire.Mark{Seq: seq, Out: s.out.end(), In: inPos}
	if n := len(s.marks); n > 0 && s.marks[n-1].Out == m.Out {
		if s.marks[n-1].In != m.In {
			s.nextMark = min(s.nextMark, n-1)
		}
		s.marks[n-1] = m
		return
	}
	s.marks = append(s.marks, m)
}

// Marks returns how many marks the stream holds.
func (s *Stream) Marks() int { return len(s.marks) }

// KeepMarks drops the marks at output positions where keep reports no
// checkpoint kept: the checkpoints there were dropped, and the peer needs
// no digest there.
func (s *Stream) KeepMarks(keep func(out uint64) bool) {
	j, next := 0, s.nextMark
	for i, m := range s.marks {
		if keep(m.Out) {
			s.marks[j] = m
			j++
		} else if i < s.nextMark {
			next--
		}
	}
	clear(s.marks[j:])
	s.marks, s.nextMark = s.marks[:j], next
}

// MarkMayBeKnown reports whether the peer may have been told of a mark at
// output position out: the output before it was put on a link.
func (s *Stream) MarkMayBeKnown(out uint64) bool { return out <= s.sent }

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
