// Package stream is the sequence-space engine of an mtcp session: absolute
// byte positions in both directions, the sender's retained bytes, flow-control
// windows, acknowledgements, duplicate suppression and the arithmetic of a
// resume. It knows nothing of sockets, goroutines or time; its caller
// serialises access with a lock.
package stream

import (
	"fmt"
	"io"

	"github.com/migratory/mtcp/internal/wire"
)

// End says how a direction of the stream ended.
type End uint8

// Ends of a direction.
const (
	Open       End = iota // still open
	HalfClosed            // FIN: no more bytes, the sender still reads
	Closed                // CLOSE: no more bytes, the sender reads no more
)

// Config sizes a Stream.
type Config struct {
	Window        int  // bytes of incoming data buffered for the application
	Retention     int  // bytes of outgoing data retained for resend
	PeerRetention int  // the peer's Retention (sets how often to ACK)
	ManualRelease bool // release follows SetRelease, not what was received
	// Memory is the budget the buffers draw on (nil: none). Output waits
	// for it (Write returns ErrNoMemory); input the peer was allowed to
	// send is counted but never refused.
	Memory Memory
}

// Stream is both directions of a session's byte stream at one end.
type Stream struct {
	cfg Config

	// Outgoing direction. out holds [release, written).
	out       ring
	sent      uint64 // bytes put on the current link
	peerLimit uint64 // the peer accepts bytes before this position
	end       End    // how this side ended its output
	endSent   bool   // FIN/CLOSE put on the current link
	endAcked  bool   // the peer saw the FIN/CLOSE

	// Incoming direction. in holds [consumed, received).
	in         ring
	peerEnd    End
	peerEndPos uint64
	release    uint64 // the peer may free its output before this position

	// What the peer was last told.
	advLimit   uint64
	advRelease uint64
	advEnd     End // the peer's end as it was last told seen (FIN, then perhaps CLOSE)

	// Regeneration after a restore (restore.go): writes before absorbTo are
	// digested, not sent.
	absorbFrom, absorbTo uint64
	absorbCRC            uint32

	// After a restore (restore.go): the peer had received restoredAt bytes
	// of output when it resumed, and may have seen the end of the previous
	// server's output there (endSeenAhead once it said so, before this
	// stream's own end). On the peer's side, peerEndRestored says that the
	// peer's end was seen before the peer restored the session: its
	// regenerated output must end at the same position.
	restored        bool
	restoredAt      uint64
	endSeenAhead    bool
	peerEndRestored bool

	// Checkpoint marks to announce in the output (restore.go).
	marks    []wire.Mark
	nextMark int

	held bool // output is held back (Hold)
}

// New returns the Stream of a new session: every position is 0, and the peer
// accepts peerWindow bytes.
func New(cfg Config, peerWindow uint64) *Stream {
	return &Stream{
		cfg:       cfg,
		out:       newRing(cfg.Retention, cfg.Memory, false),
		in:        newRing(cfg.Window, cfg.Memory, true),
		peerLimit: peerWindow,
		advLimit:  uint64(cfg.Window),
	}
}

// Written is the number of bytes the application has written.
func (s *Stream) Written() uint64 { return s.out.end() }

// Sent is the position up to which bytes were put on the current link.
func (s *Stream) Sent() uint64 { return s.sent }

// Retained returns the range of outgoing bytes kept for resend.
func (s *Stream) Retained() (from, to uint64) { return s.out.start, s.out.end() }

// Received is the number of incoming bytes received.
func (s *Stream) Received() uint64 { return s.in.end() }

// Consumed is the number of incoming bytes the application has read.
func (s *Stream) Consumed() uint64 { return s.in.start }

// Buffered is the number of incoming bytes waiting to be read.
func (s *Stream) Buffered() int { return s.in.n }

// WriteSpace is how many bytes Write would accept now.
func (s *Stream) WriteSpace() int { return s.out.free() }

// Write retains as much of p as fits and returns how much it took.
func (s *Stream) Write(p []byte) (int, error) {
	if s.end != Open {
		return 0, ErrWriteAfterEnd
	}
	if s.endSeenAhead && s.out.end()+uint64(len(p)) > s.restoredAt {
		return 0, fmt.Errorf("%w: the peer saw the end of the output at %d, the application writes up to %d",
			ErrDiverged, s.restoredAt, s.out.end()+uint64(len(p)))
	}
	n := 0
	if s.out.end() < s.absorbTo {
		n = s.absorb(p)
	}
	k := s.out.write(p[n:])
	if n+k < len(p) && s.out.free() > 0 {
		return n + k, ErrNoMemory
	}
	return n + k, nil
}

// CanSend reports whether NextData or NextEnd has something for the link.
func (s *Stream) CanSend() bool {
	if s.peerEnd == Closed || s.held {
		return false // the peer reads no more
	}
	return s.sent < min(s.out.end(), s.peerLimit) || s.endDue() ||
		(s.nextMark < len(s.marks) && s.marks[s.nextMark].Out <= s.sent)
}

// NextData takes up to limit bytes to send from the retained output,
// starting at position seq, appends them to dst in pieces, and counts them
// as sent. It returns no bytes when everything is sent or the peer's window
// is closed. The pieces stay valid until the peer releases them.
func (s *Stream) NextData(limit int, dst [][]byte) (seq uint64, n int, pieces [][]byte) {
	to := min(s.out.end(), s.peerLimit, s.sent+uint64(limit))
	if s.nextMark < len(s.marks) {
		to = min(to, max(s.marks[s.nextMark].Out, s.sent)) // stop at the next mark
	}
	if to <= s.sent || s.peerEnd == Closed || s.held {
		return s.sent, 0, dst
	}
	seq = s.sent
	dst = s.out.pieces(dst, seq, to)
	s.sent = to
	return seq, int(to - seq), dst
}

func (s *Stream) endDue() bool {
	return s.peerEnd != Closed && !s.held && s.end != Open && !s.endSent && !s.endAcked && s.sent == s.out.end()
}

// NextEnd returns the FIN or CLOSE to send, once every byte before it is sent.
func (s *Stream) NextEnd() (kind End, pos uint64, ok bool) {
	if !s.endDue() {
		return Open, 0, false
	}
	s.endSent = true
	return s.end, s.out.end(), true
}

// EndOutput ends the outgoing direction with kind (HalfClosed or Closed).
// Ending again only upgrades HalfClosed to Closed. On a restored stream
// the end must not cut the regenerated output short, and must lie where the
// peer saw the end, if it did: else the output diverged (ErrDiverged).
func (s *Stream) EndOutput(kind End) error {
	if kind <= s.end {
		return nil
	}
	if s.Regenerating() {
		return fmt.Errorf("%w: the output ends at %d, before the %d bytes the peer received",
			ErrDiverged, s.out.end(), s.absorbTo)
	}
	if s.endSeenAhead && s.out.end() != s.restoredAt {
		return fmt.Errorf("%w: the output ends at %d, the peer saw its end at %d", ErrDiverged, s.out.end(), s.restoredAt)
	}
	if s.end != Open {
		s.endSent, s.endAcked = false, false
	}
	s.end = kind
	if s.endSeenAhead {
		// The peer has seen a FIN here already: a FIN needs not go again;
		// a CLOSE, which says more, does.
		s.endSeenAhead = false
		s.endAcked = kind == HalfClosed
	}
	return nil
}

// OutputEnd reports how the outgoing direction ended.
func (s *Stream) OutputEnd() End { return s.end }

// OutputDone reports whether the output ended and the peer has all of it.
func (s *Stream) OutputDone() bool {
	return s.end != Open && s.endAcked && s.out.n == 0
}

// AwaitsPeer reports whether the output waits for the peer: bytes sent and
// not yet released, bytes waiting for the peer's window to open, or an end
// sent and not yet seen.
func (s *Stream) AwaitsPeer() bool {
	return s.sent > s.out.start || (s.sent < s.out.end() && s.peerEnd != Closed) || (s.endSent && !s.endAcked)
}

// OnAck applies an ACK from the peer.
func (s *Stream) OnAck(a wire.Ack) error {
	top := s.sent
	if s.Regenerating() {
		top = s.absorbTo // the peer has the output being regenerated
	}
	if a.Release < s.out.start || a.Release > top {
		return fmt.Errorf("%w: release %d outside [%d, %d]", ErrProtocol, a.Release, s.out.start, top)
	}
	if a.Release > s.sent {
		a.Release = s.sent // nothing of it is retained yet
	}
	if a.Limit < s.peerLimit {
		return fmt.Errorf("%w: limit went back from %d to %d", ErrProtocol, s.peerLimit, a.Limit)
	}
	if a.FinSeen {
		if s.end == Open {
			if err := s.endSeenBefore(); err != nil {
				return err
			}
		} else {
			s.endAcked = true
		}
	}
	s.out.discard(a.Release)
	s.peerLimit = a.Limit
	s.pruneMarks()
	return nil
}

// BeginData checks an incoming DATA frame of n bytes at seq before its payload
// is read. It returns how many leading bytes are duplicates to drop; the rest
// must be stored with Reserve and Commit.
func (s *Stream) BeginData(seq uint64, n int) (skip int, err error) {
	recv := s.in.end()
	if seq > recv {
		return 0, fmt.Errorf("%w: DATA at %d leaves a gap after %d", ErrProtocol, seq, recv)
	}
	dup := recv - seq
	if dup >= uint64(n) {
		return n, nil
	}
	last := seq + uint64(n)
	if last > s.advLimit {
		return 0, fmt.Errorf("%w: DATA up to %d passes the window limit %d", ErrProtocol, last, s.advLimit)
	}
	if s.peerEnd != Open && last > s.peerEndPos {
		return 0, fmt.Errorf("%w: DATA up to %d after the end at %d", s.peerEndErr(), last, s.peerEndPos)
	}
	return int(dup), nil
}

// Reserve returns buffer space for the next k incoming bytes (k was allowed
// by BeginData), in one or two pieces. The caller fills it without the lock
// and then calls Commit.
func (s *Stream) Reserve(k int) (a, b []byte) { return s.in.reserve(k) }

// Commit makes k reserved incoming bytes readable.
func (s *Stream) Commit(k int) {
	s.in.commit(k)
	if !s.cfg.ManualRelease {
		s.release = s.in.end()
	}
}

// Read copies buffered incoming bytes into p. It returns io.EOF once the
// peer's end of stream is reached and everything before it is read.
func (s *Stream) Read(p []byte) (int, error) {
	n := s.in.read(p)
	if n == 0 && s.peerEnd != Open && s.in.start == s.peerEndPos && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Readable reports whether Read would return bytes or io.EOF.
func (s *Stream) Readable() bool {
	return s.in.n > 0 || (s.peerEnd != Open && s.in.start == s.peerEndPos)
}

// OnEnd applies the peer's FIN (HalfClosed) or CLOSE (Closed) at pos.
func (s *Stream) OnEnd(kind End, pos uint64) error {
	if pos < s.in.end() {
		return fmt.Errorf("%w: end at %d before received %d", ErrProtocol, pos, s.in.end())
	}
	if s.peerEnd != Open && pos != s.peerEndPos {
		return fmt.Errorf("%w: end moved from %d to %d", s.peerEndErr(), s.peerEndPos, pos)
	}
	if kind > s.peerEnd {
		s.peerEnd = kind
	}
	s.peerEndPos = pos
	return nil
}

// PeerEndTold reports whether the peer was told its end was seen.
func (s *Stream) PeerEndTold() bool { return s.advEnd == s.peerEnd }

// PeerEnd reports how the peer ended its output (Open if it has not).
func (s *Stream) PeerEnd() End { return s.peerEnd }

// SetRelease lets the peer free its output before pos (ManualRelease mode).
func (s *Stream) SetRelease(pos uint64) error {
	if pos > s.in.end() || pos < s.release {
		return fmt.Errorf("%w: release %d outside [%d, %d]", ErrProtocol, pos, s.release, s.in.end())
	}
	s.release = pos
	return nil
}

// PeerLimit is the output position the peer accepts bytes before: output
// beyond it waits until the peer's application reads.
func (s *Stream) PeerLimit() uint64 { return s.peerLimit }

// Release is the position before which the peer may free its output.
func (s *Stream) Release() uint64 { return s.release }

func (s *Stream) limit() uint64 { return s.in.start + uint64(s.cfg.Window) }

// AckDue reports whether the peer should be told of new progress: urgent when
// the window or release moved by a quarter, or the peer's end was not yet
// acknowledged; dirty when anything moved at all.
func (s *Stream) AckDue() (urgent, dirty bool) {
	lim := s.limit()
	dirty = lim != s.advLimit || s.release != s.advRelease || s.peerEnd != s.advEnd
	urgent = lim-s.advLimit >= uint64(max(1, s.cfg.Window/4)) ||
		s.release-s.advRelease >= uint64(max(1, s.cfg.PeerRetention/4)) ||
		s.peerEnd != s.advEnd // a FIN, or a CLOSE after a FIN, not yet acknowledged
	return urgent, dirty
}

// MakeAck returns the ACK that tells the peer the current progress and
// records it as told.
func (s *Stream) MakeAck() wire.Ack {
	s.advLimit, s.advRelease, s.advEnd = s.limit(), s.release, s.peerEnd
	return wire.Ack{Limit: s.advLimit, Release: s.advRelease, FinSeen: s.peerEnd != Open}
}

// Positions returns what this side tells the peer when the session resumes,
// and records the limit and release in it as told.
func (s *Stream) Positions() wire.Positions {
	s.advLimit, s.advRelease = s.limit(), s.release
	return wire.Positions{
		Received: s.in.end(),
		Limit:    s.advLimit,
		Release:  s.advRelease,
		Retained: s.out.start,
		Written:  s.out.end(),
	}
}

// Resume applies the peer's positions on a new link: output resumes from
// the peer's Received, which must still be retained.
func (s *Stream) Resume(peer wire.Positions) error {
	if s.Regenerating() {
		return s.resumeRegenerating(peer)
	}
	if peer.Received < s.out.start || peer.Received > s.out.end() {
		return fmt.Errorf("%w: peer needs position %d, retained [%d, %d)",
			ErrNotRetained, peer.Received, s.out.start, s.out.end())
	}
	if peer.Release > peer.Received || peer.Release < s.out.start {
		return fmt.Errorf("%w: peer release %d outside [%d, %d]", ErrProtocol, peer.Release, s.out.start, peer.Received)
	}
	s.out.discard(peer.Release)
	s.sent = peer.Received
	s.peerLimit = peer.Limit
	s.endSent = false
	s.advEnd = Open // tell the peer again on the new link
	s.pruneMarks()
	s.resendMarksFrom(peer.Received)
	return nil
}

// Held is the memory the stream's buffers hold.
func (s *Stream) Held() int { return s.in.held() + s.out.held() }

// DiscardOutput gives back the memory of the retained output: the session
// ended and nothing will be sent again.
func (s *Stream) DiscardOutput() { s.out.release() }

// DiscardInput drops the buffered input: the application reads no more.
func (s *Stream) DiscardInput() {
	s.in.discard(s.in.end())
}

// Deliver counts n incoming bytes as received and consumed at once: the
// caller read them straight into the application's buffer. Nothing may be
// buffered (Buffered() == 0), and BeginData must have allowed them.
func (s *Stream) Deliver(n int) {
	s.in.skipEmpty(n)
	if !s.cfg.ManualRelease {
		s.release = s.in.end()
	}
}
