package mtcp

import (
	"errors"
	"fmt"
	"time"

	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/snapshot"

	"github.com/migratory/mtcp/internal/wire"
)

// serverSide is what only the server end of a session has.
type serverSide struct {
	ln         *Listener
	member     *pool.Runtime // nil when standalone
	detach     *time.Timer
	detachGen  uint64 // invalidates a detach timer that fired during a resume
	detachedAt time.Time
	resumeGen  uint64 // the newest resume in progress
	resumed    bool   // the client resumed the session at least once
	attempt    uint64 // the newest resume attempt of the client proven here (wire.Hello.Attempt)

	// Pool state, guarded by Conn.mu.
	epoch      uint64
	params     snapshot.Params
	ckpts      []*snapshot.Record // newest last; the first may be durable
	durable    *snapshot.Record   // newest checkpoint the client can resume from
	nextSeq    uint64
	state      []byte // restored state (State)
	restored   bool   // restored here from a checkpoint (Restored)
	membersVer uint64 // version of the member list the client has

	moveTo   *wire.Move  // asked of the client (Migrate, Drain)
	moveSent bool        // the MOVE for moveTo went out
	settle   settleState // the MOVE's wait for a checkpoint boundary (settle.go)

	moveSends int // MOVEs sent again to a client that came back instead (listener_handshake.go)

	explicit bool         // the application checkpoints (it called Checkpoint)
	copies   *pool.Copies // copies the checkpoints on other members (nil: none)
	copied   copyState    // what the copies of the checkpoints are
	released bool         // the client freed input no durable checkpoint covers
	atRisk   bool         // counted in Listener.atRisk (crashsafe.go)

	// Verification of regenerated output after a restore.
	verifyPending bool
	haveVerify    bool
	verify        wire.Verify
}

// detached (c.mu held) starts the wait for the client to come back.
func (s *serverSide) detached(c *Conn, cause error) {
	if s.ln.isClosed() {
		c.failLocked(fmt.Errorf("%w (link lost: %v)", ErrListenerClosed, cause))
		return
	}
	s.detachGen++
	s.detachedAt = time.Now()
	gen := s.detachGen
	timeout := s.ln.cfg.DetachTimeout
	if !s.resumed {
		timeout = s.ln.cfg.FirstDetachTimeout
	}
	s.detach = time.AfterFunc(timeout, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if s.detachGen == gen && c.link == nil {
			c.failLocked(fmt.Errorf("%w (%v; link lost: %v)", ErrDetachTimeout, timeout, cause))
		}
	})
	if s.member != nil && s.member.Replicas() > 0 {
		s.probeFence(c, gen)
	}
}

// fenceProbe is how often a member checks, while a session's client is
// away, whether another member took the session over.
const fenceProbe = time.Second

// probeFence asks the session's replicas now and then while the client is
// away whether they know a newer epoch, which ends the session here (it was
// taken over while this member was cut off).
func (s *serverSide) probeFence(c *Conn, gen uint64) {
	time.AfterFunc(fenceProbe, func() {
		c.mu.Lock()
		away := s.detachGen == gen && c.link == nil && !c.ended
		c.mu.Unlock()
		if !away {
			return
		}
		s.member.ProbeEpoch(poolSession{c})
		s.probeFence(c, gen)
	})
}

// newAttempt records a proven resume attempt of the client, and reports
// false for one older than an attempt seen already: the client gave it up
// (a move that timed out, say) and resumed again since, so it must not
// take effect now.
func (s *serverSide) newAttempt(c *Conn, attempt uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.newAttemptLocked(attempt)
}

func (s *serverSide) newAttemptLocked(attempt uint64) bool {
	if attempt <= s.attempt {
		return false
	}
	s.attempt = attempt
	return true
}

// reattached (c.mu held) cancels the wait.
func (s *serverSide) reattached() {
	s.detachGen++
	if s.detach != nil {
		s.detach.Stop()
	}
}

// forgetEnded (c.mu held) forgets an ended session.
func (s *serverSide) forgetEnded(c *Conn) {
	s.reattached()
	s.settle.stop()
	if s.atRisk {
		s.atRisk = false
		s.ln.atRisk.Add(-1)
	}
	if s.copies != nil {
		// The replicas forget an ended session, but not one that moved,
		// nor one evicted, which may be taken over from them.
		s.copies.Stop(!errors.Is(c.err, ErrMigrated) && !errors.Is(c.err, ErrEvicted), s.epoch)
	}
	s.ln.mu.Lock()
	if s.ln.sessions[c.id] == c {
		delete(s.ln.sessions, c.id)
	}
	s.ln.mu.Unlock()
}
