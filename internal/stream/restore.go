package stream

import (
	"fmt"

	"github.com/migratory/mtcp/internal/digest"
	"github.com/migratory/mtcp/internal/wire"
)

// Restore returns the Stream of a session restored from a checkpoint: the
// application has consumed inPos bytes of input and written outPos bytes of
// output, and the peer accepts output before peerLimit.
func Restore(cfg Config, inPos, outPos, peerLimit uint64) *Stream {
	s := New(cfg, peerLimit)
	s.in.start, s.release = inPos, inPos
	s.advLimit, s.advRelease = inPos+uint64(cfg.Window), inPos
	s.out.start, s.sent = outPos, outPos
	return s
}

// Regenerate makes the application's next writes, up to position to, stand
// in for output the peer already has: they are not retained or sent, only
// digested (CRC-32C), so that they can be checked against what the peer
// received (RegeneratedDigest).
func (s *Stream) Regenerate(to uint64) {
	if to > s.out.end() {
		s.absorbTo, s.absorbFrom, s.absorbCRC = to, s.out.end(), 0
	}
}

// Regenerating reports whether output is still being regenerated.
func (s *Stream) Regenerating() bool { return s.out.end() < s.absorbTo }

// RegeneratedDigest returns the range being regenerated, its CRC-32C so
// far, and whether it is complete.
func (s *Stream) RegeneratedDigest() (from, to uint64, crc uint32, done bool) {
	return s.absorbFrom, s.absorbTo, s.absorbCRC, s.out.end() >= s.absorbTo
}

// absorb takes the regenerated part of p; it returns how much it took.
func (s *Stream) absorb(p []byte) int {
	k := int(min(uint64(len(p)), s.absorbTo-s.out.end()))
	s.absorbCRC = digest.Update(s.absorbCRC, p[:k])
	s.out.skipEmpty(k)
	s.sent = s.out.end()
	return k
}

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

// resumeRegenerating checks a resume during regeneration: the peer still
// has exactly the bytes up to the end of the regenerated range.
func (s *Stream) resumeRegenerating(peer wire.Positions) error {
	if peer.Received != s.absorbTo {
		return fmt.Errorf("%w: peer at %d while regenerating up to %d", ErrNotRetained, peer.Received, s.absorbTo)
	}
	s.peerLimit = peer.Limit
	s.endSent = false
	s.advEnd = Open
	return nil
}

// Hold stops (true) or restarts (false) sending output; marks and the end of
// stream wait too.
func (s *Stream) Hold(on bool) { s.held = on }

// ResendEnd makes a sent and acknowledged FIN or CLOSE go out again (to a
// server that restored the session and may not have seen it).
func (s *Stream) ResendEnd() {
	s.endSent, s.endAcked = false, false
}
