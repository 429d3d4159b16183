package stream

import (
	"fmt"

	"github.com/migratory/mtcp/internal/digest"
	"github.com/migratory/mtcp/internal/wire"
)

// Restore returns the Stream of a session restored from a checkpoint, for a
// peer that resumes with positions peer: the application has consumed inPos
// bytes of input and written outPos bytes of output. Output the peer has
// beyond outPos is regenerated (Regenerate). The peer may also have seen the
// end of the output at peer.Received: the regenerated output must then end
// there (EndOutput, Write and OnAck check it).
func Restore(cfg Config, inPos, outPos uint64, peer wire.Positions) (*Stream, error) {
	s := New(cfg, peer.Limit)
	s.in.start, s.release = inPos, inPos
	s.advLimit, s.advRelease = inPos+uint64(cfg.Window), inPos
	s.out.start, s.sent = outPos, outPos
	s.restored, s.restoredAt = true, peer.Received
	s.Regenerate(peer.Received)
	if err := s.Resume(peer); err != nil {
		return nil, err
	}
	return s, nil
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

// endSeenBefore applies the peer's acknowledgement of an end of output that
// this stream has not sent. Only a restored stream's peer may have seen one:
// the end of the previous server's output, at the position the peer had
// received when it resumed here. The application regenerates that end;
// until it does, its output may not go past it (EndOutput, Write).
func (s *Stream) endSeenBefore() error {
	if !s.restored {
		return fmt.Errorf("%w: FIN acknowledged before it was sent", ErrProtocol)
	}
	if w := s.out.end(); w > s.restoredAt {
		return fmt.Errorf("%w: the peer saw the end of the output at %d, the application wrote up to %d",
			ErrDiverged, s.restoredAt, w)
	}
	s.endSeenAhead = true
	return nil
}

// PeerRestored prepares this side for a peer that restored the session from
// a checkpoint. The peer may not know how this side's output ended: a FIN or
// CLOSE goes out again, acknowledged or not. And if this side saw the end of
// the peer's output, the peer must regenerate it at the same position: DATA
// after it, or an end elsewhere, is a divergence (ErrDiverged) rather than a
// protocol violation.
func (s *Stream) PeerRestored() {
	s.endSent, s.endAcked = false, false
	if s.peerEnd != Open {
		s.peerEndRestored = true
	}
}

// peerEndErr is the error for output of the peer's that does not stop at
// the end seen: a divergence if the end was seen before the peer restored
// the session, else a protocol violation.
func (s *Stream) peerEndErr() error {
	if s.peerEndRestored {
		return ErrDiverged
	}
	return ErrProtocol
}
