package mtcp

import (
	"fmt"
	"log/slog"

	"github.com/migratory/mtcp/internal/digest"
	"github.com/migratory/mtcp/internal/wire"
)

// receivedLocked notes output bytes arriving at a client of a pool: they go
// into the running digest that lets a successor check its regenerated output.
func (c *Conn) receivedLocked(p []byte) {
	if cs := c.client; cs != nil && cs.pool {
		cs.digest.Write(p)
		if cs.ps != nil {
			cs.ps.bytes += uint64(len(p))
		}
	}
	c.countTraffic(len(p))
}

// countTraffic adds n bytes of a server session's traffic to its member's
// load figure.
func (c *Conn) countTraffic(n int) {
	if s := c.server; s != nil && s.member != nil {
		s.member.AddTraffic(n)
	}
}

// handlePoolFrameLocked applies MEMBERS, MOVE and MARK (server to client) and
// VERIFY (client to server).
func (c *Conn) handlePoolFrameLocked(l *link, h wire.Header, b []byte) error {
	f, err := wire.Decode(h, b)
	if err != nil {
		return err
	}
	switch f := f.(type) {
	case wire.Verify:
		s := c.server
		if s == nil {
			return fmt.Errorf("%w: VERIFY sent to a client", ErrProtocol)
		}
		if !s.verifyPending {
			return nil // a repeat after a resume
		}
		s.verify, s.haveVerify = f, true
		c.checkRegeneratedLocked()
		return nil
	}
	cs := c.client
	if cs == nil || !cs.pool {
		return fmt.Errorf("%w: %v from a client or a standalone server", ErrProtocol, h.Type)
	}
	switch f := f.(type) {
	case wire.Members:
		cs.members = make([]Member, 0, len(f.List))
		for _, m := range f.List {
			cs.members = append(cs.members, Member{Name: m.Name, Addr: m.Addr, Sessions: int(m.Sessions), BytesPerSec: m.BytesPerSec, Draining: m.Draining, Balancing: m.Balancing})
		}
	case wire.Mark:
		if f.Out != cs.digest.Pos {
			return fmt.Errorf("%w: MARK at %d, received %d", ErrProtocol, f.Out, cs.digest.Pos)
		}
		added := cs.noteMark(f)
		c.pruneMarksLocked()
		cs.wakeMarkWaitersLocked() // a Migrate waits for a checkpoint it can resume from
		if added {
			// Acknowledge the output before the mark at once: it makes the
			// checkpoint durable. (A newer checkpoint at the same position
			// has no new output to acknowledge.)
			l.kickNow()
		}
	case wire.Move:
		if logOn(c.log, slog.LevelInfo) {
			c.log.Info("mtcp: server asks the session to move", "to", f.Name, "addr", f.Addr, "reason", f.Reason)
		}
		go cs.obeyMove(c, f, cs.member, l)
	}
	return nil
}

// noteMark records the client's digest at a checkpoint the server
// announced, at most one per output position: the digest there does not
// depend on the input. A MARK at the position of the newest mark is a newer
// checkpoint there, or the same one sent again after a resume: its number
// and input position replace the older ones. Numbers do not order marks:
// a member that restored the session numbers its checkpoints from the
// restored one, again, and positions only grow. It reports whether the mark
// is at a new position.
func (cs *clientSide) noteMark(f wire.Mark) bool {
	if n := len(cs.marks); n > 0 && cs.marks[n-1].at.Pos == f.Out {
		cs.marks[n-1].seq, cs.marks[n-1].in = f.Seq, f.In
		return false
	}
	if len(cs.marks) >= maxMarks {
		// The oldest go first: the server keeps its durable checkpoint and
		// those whose marks it sent since (at most maxCheckpoints of them).
		cs.marks = append(cs.marks[:0], cs.marks[1:]...)
	}
	cs.marks = append(cs.marks, markDigest{seq: f.Seq, in: f.In, at: cs.digest})
	return true
}

// pruneMarksLocked forgets checkpoints the server can no longer restore:
// those whose input the client has freed. It keeps the newest, and every
// checkpoint that is still restorable, even one older than another
// restorable one: the newer may have no copies on the replicas yet, while
// the older is durable (a session that writes without reading takes all its
// checkpoints at the same input position).
func (c *Conn) pruneMarksLocked() {
	cs := c.client
	retained, _ := c.st.Retained()
	i := 0
	for i < len(cs.marks)-1 && cs.marks[i].in < retained {
		i++
	}
	cs.marks = cs.marks[i:]
}

// digestAt returns the client's digest of its output prefix at pos, if pos is
// a checkpoint it was told of (or 0).
func (cs *clientSide) digestAt(pos uint64) (digest.Running, bool) {
	if pos == 0 {
		return digest.Running{}, true
	}
	for _, m := range cs.marks {
		if m.at.Pos == pos {
			return m.at, true
		}
	}
	return digest.Running{}, false
}

// poolFramesLocked appends the pool frames due on a link: the member list to
// a client that has an old one, and the client's VERIFY after a restore.
func (l *link) poolFramesLocked() {
	c := l.c
	if s := c.server; s != nil && s.member != nil {
		// The version first, without the member's lock: most batches have
		// no news to send.
		if s.member.MembersVersion() != s.membersVer {
			b, v := s.member.MembersFrame()
			s.membersVer = v
			l.bufs = append(l.bufs, b)
		}
		if s.moveTo != nil && !s.moveSent && s.moveDueLocked(c) {
			s.moveSent = true
			l.bufs = append(l.bufs, wire.AppendFrame(nil, *s.moveTo))
			s.moveSentLocked(c)
		}
	}
	if cs := c.client; cs != nil && cs.verify != nil {
		l.bufs = append(l.bufs, wire.AppendFrame(nil, *cs.verify))
		cs.verify = nil
	}
}
