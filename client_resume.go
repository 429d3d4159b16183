package mtcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/digest"
	"github.com/migratory/mtcp/internal/wire"
)

const (
	initialBackoff = 5 * time.Millisecond
	maxBackoff     = 1 * time.Second
)

// clientSide is what only the client end of a session has: where to
// reconnect, and the reconnect state.
type clientSide struct {
	d            Dialer // with defaults
	network      string
	address      string // where the session is served now
	service      string // the address first dialed: the pool's service address
	reconnecting bool   // guarded by Conn.mu
	attempts     uint64 // resume HELLOs sent, which they number (guarded by Conn.mu)

	// Pool state, guarded by Conn.mu.
	pool     bool     // the server is a pool member
	member   string   // the member serving the session
	epoch    uint64   // the session's epoch as last told
	members  []Member // the pool as last told
	digest   digest.Running
	marks    []markDigest  // checkpoints the server announced, oldest first
	markCh   chan struct{} // closed at the next mark (a Migrate waits for one)
	verify   *wire.Verify  // to send first on the new link
	moving   *move         // a move under way
	obeying  *link         // the link the member asked for the move being obeyed on
	restored bool          // the last resume restored the session from a checkpoint
	ps       *policyState  // the move policy's figures
}

// markDigest is the client's digest of its received output at a checkpoint
// the server announced: the newest at its output position (seq, for logs,
// and in, which says when it can no longer be restored).
type markDigest struct {
	seq, in uint64
	at      digest.Running
}

// maxMarks bounds the announced checkpoints a client remembers; it is well
// above the checkpoints a server keeps (maxCheckpoints), so the client knows
// every one the server may restore.
const maxMarks = 256

// startReconnect (c.mu held) starts resuming on a new link, once: the
// session has stood still since lost (its link's loss), which the resume
// timeout and the pause the Metrics see count from.
func (cs *clientSide) startReconnect(c *Conn, cause error, lost time.Time) {
	if cs.reconnecting {
		return
	}
	cs.reconnecting = true
	if lost.IsZero() {
		lost = time.Now()
	}
	go cs.reconnect(c, cause, lost)
}

// reconnect redials with exponential backoff and full jitter until a resume
// succeeds, the session ends, a resume is refused for good, or the resume
// timeout passes.
func (cs *clientSide) reconnect(c *Conn, cause error, start time.Time) {
	giveUp := start.Add(cs.d.ResumeTimeout)
	backoff := initialBackoff
	lastErr := cause
	var answer error  // the last refusal a member sent, which says more than a failed dial
	answered := false // lastErr is that answer
	next := ""        // where a redirect sends the next attempt
	// An attempt is made even after the resume timeout in two cases: the
	// first (a move that went on as the session's resume may have used the
	// time up: the session is not lost before its member was tried), and
	// one that follows a redirect to where the session is now, a few times
	// at most.
	mustTry, late := true, 0
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			wait := min(time.Duration(rand.Int64N(int64(backoff)))+time.Millisecond, time.Until(giveUp))
			backoff = min(2*backoff, maxBackoff)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.endedCh:
				t.Stop()
				return
			}
		}
		if overdue := !time.Now().Before(giveUp); overdue && mustTry && late < maxLateAttempts {
			late++
		} else if overdue {
			c.mu.Lock()
			cs.reconnecting = false
			err := fmt.Errorf("%w after %v: %w", ErrResumeTimeout, cs.d.ResumeTimeout, lastErr)
			if answer != nil && !answered {
				err = fmt.Errorf("%w (the last member that answered: %w)", err, answer)
			}
			c.failLocked(err)
			c.mu.Unlock()
			return
		}
		deadline := minTime(giveUp, time.Now().Add(cs.d.HandshakeTimeout))
		if least := time.Now().Add(min(cs.d.HandshakeTimeout, cs.d.ResumeTimeout)); mustTry && deadline.Before(least) {
			deadline = least
		}
		mustTry = false
		addr := next
		next = ""
		c.mu.Lock()
		ctx, cancel := context.WithDeadline(c.endedContextLocked(), deadline) // ends with the session too
		if addr == "" {
			addr = cs.attemptAddrLocked(attempt)
		}
		verdict := cs.ownMemberLocked(addr)
		c.mu.Unlock()
		err := cs.resumeAt(ctx, c, addr)
		cancel()
		if err == nil {
			pause := time.Since(start)
			c.mu.Lock()
			restored := cs.restored
			c.mu.Unlock()
			if logOn(c.log, slog.LevelInfo) {
				c.log.Info("mtcp: session resumed", "attempts", attempt, "after", pause, "server", c.RemoteAddr().String(), "restored", restored)
			}
			if restored {
				cs.d.Metrics.FailedOver(pause)
			} else {
				cs.d.Metrics.Resumed(pause)
			}
			return
		}
		if errors.Is(err, errEnded) {
			return
		}
		// A member that drains only suggests another: the session is still
		// where it was, and the attempts go on there and at the others.
		var rd *redirectError
		if errors.As(err, &rd) && rd.moved() {
			c.mu.Lock()
			cs.address = rd.addr
			c.mu.Unlock()
			if logOn(c.log, slog.LevelInfo) {
				c.log.Info("mtcp: session is on another member", "member", rd.name, "addr", rd.addr)
			}
			backoff = initialBackoff
			next = rd.addr
			mustTry = true
			continue
		}
		if logOn(c.log, slog.LevelDebug) {
			c.log.Debug("mtcp: resume attempt failed", "attempt", attempt, "addr", addr, "err", err, "marks", c.marksForLog())
		}
		// Only the session's own member's refusal is a verdict: another
		// member, or whichever member the service address leads to, may
		// not know the session yet.
		if verdict && fatalResumeError(err) {
			c.mu.Lock()
			cs.reconnecting = false
			c.failLocked(err)
			c.mu.Unlock()
			return
		}
		lastErr = err
		var pe *PeerError
		answered = errors.As(err, &pe) || errors.As(err, &rd)
		if answered {
			answer = err
		}
	}
}

// maxLateAttempts bounds the attempts a reconnect makes after its resume
// timeout (see reconnect).
const maxLateAttempts = 3

// tryOthersAfter is how many failed attempts at the session's own member
// the client makes before it also tries the pool's other members, which can
// take the session over (M-TCP's move on failure).
const tryOthersAfter = 2

// attemptAddrLocked picks where resume attempt n goes: the session's member
// first; then, in a pool, rounds of the other members it knows (least
// loaded first), its own member, and last the address the session was
// first dialed at. That one is the pool's service address in a deployment
// (a DNS name, resolved again by every dial, or a load balancer): it leads
// to a live member, known to the client or not, which takes the session
// over or says where it is, even when every member the client knows is
// gone.
func (cs *clientSide) attemptAddrLocked(n int) string {
	own := cs.memberAddrLocked()
	if !cs.pool || n <= tryOthersAfter {
		return own
	}
	others := make([]Member, 0, len(cs.members))
	for _, m := range cs.members {
		if m.Addr != own && m.Name != cs.member && !m.Draining {
			others = append(others, m)
		}
	}
	slices.SortStableFunc(others, func(a, b Member) int { return a.Sessions - b.Sessions })
	round := make([]string, 0, len(others)+2)
	for _, m := range others {
		round = append(round, m.Addr)
	}
	round = append(round, own)
	if cs.service != "" && !slices.Contains(round, cs.service) {
		round = append(round, cs.service)
	}
	return round[(n-tryOthersAfter-1)%len(round)]
}

// memberAddrLocked is the address of the member serving the session. A
// session reached through the service address is served by a member the
// client can reach at its own address, as the pool lists it: resuming
// there finds the session where it is.
func (cs *clientSide) memberAddrLocked() string {
	if cs.address == cs.service {
		for _, m := range cs.members {
			if m.Name == cs.member && m.Addr != "" {
				return m.Addr
			}
		}
	}
	return cs.address
}

// ownMemberLocked reports whether addr is known to lead to the member
// serving the session, whose refusal is a verdict. In a pool, the address
// first dialed leads to whichever member it picks, unless the pool lists
// it as the serving member's own.
func (cs *clientSide) ownMemberLocked(addr string) bool {
	own := cs.memberAddrLocked()
	if addr != own {
		return false
	}
	if !cs.pool || addr != cs.service {
		return true
	}
	for _, m := range cs.members {
		if m.Name == cs.member && m.Addr == addr {
			return true
		}
	}
	return false
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// fatalResumeError reports errors that no retry can fix.
func fatalResumeError(err error) bool {
	var pe *PeerError
	if errors.As(err, &pe) {
		switch wire.Code(pe.Code) {
		case wire.CodeBusy, wire.CodeInternal, wire.CodeStaleEpoch, wire.CodeDraining, wire.CodeNotMovable:
			return false // another member may do
		}
		return true
	}
	return errors.Is(err, ErrNotRetained) || errors.Is(err, ErrProtocol) || errors.Is(err, ErrVersion) ||
		errors.Is(err, ErrDiverged)
}

// redirectError: the session is served by another member now (CodeMoved),
// or the member is draining and suggests another (CodeDraining).
type redirectError struct {
	code       wire.Code
	name, addr string
}

func (e *redirectError) Error() string {
	if e.code == wire.CodeDraining {
		return "mtcp: the member is draining (it suggests " + e.name + " at " + e.addr + ")"
	}
	return "mtcp: session moved to " + e.name + " at " + e.addr
}

// Unwrap gives the sentinel of the refusal: ErrMemberDraining or ErrMigrated.
func (e *redirectError) Unwrap() error { return codeErrors[e.code] }

// moved reports whether the redirect says where the session is now.
func (e *redirectError) moved() bool { return e.code == wire.CodeMoved }

// resumeAt dials a new link to addr and resumes the session on it.
func (cs *clientSide) resumeAt(ctx context.Context, c *Conn, addr string) error {
	nc, err := cs.d.dialLink(ctx, cs.network, addr)
	if err != nil {
		return err
	}
	if err := cs.resumeOn(ctx, c, nc, addr); err != nil {
		_ = nc.Close()
		return err
	}
	return nil
}

func (cs *clientSide) resumeOn(ctx context.Context, c *Conn, nc net.Conn, addr string) error {
	stop := withConnDeadline(ctx, nc)
	defer stop()
	hello := cs.d.hello()
	hello.Resume, hello.Session, hello.Nonce = true, c.id, auth.Nonce()
	c.mu.Lock()
	cs.attempts++
	hello.Epoch, hello.Attempt, hello.Origin = cs.epoch, cs.attempts, cs.member
	c.mu.Unlock()
	if _, err := nc.Write(wire.AppendFrame(wire.Preface[:], hello)); err != nil {
		return &handshakeError{"sending HELLO", err}
	}
	br := newHandshakeReader(nc)
	f, err := wire.ReadFrameOf(br, wire.TypeChallenge, wire.TypeRefused)
	if err != nil {
		return &handshakeError{"reading CHALLENGE", err}
	}
	ch, err := answerOf[wire.Challenge](f, "a resume HELLO")
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return errEnded
	}
	if err := cs.leaveLinkLocked(c); err != nil {
		c.mu.Unlock()
		return err
	}
	pos := c.st.Positions()
	known := cs.knownLocked()
	c.mu.Unlock()
	proof := wire.Proof{Positions: pos, Known: known}
	rs := auth.NewResume(hello, ch)
	var fb [wire.FieldsRoom]byte
	proof.MAC = rs.ClientMAC(c.secret, proof.AppendFields(fb[:0]))
	if _, err := nc.Write(wire.AppendFrame(nil, proof)); err != nil {
		return &handshakeError{"sending PROOF", err}
	}
	f, err = wire.ReadFrameOf(br, wire.TypeResumed, wire.TypeRefused)
	if err != nil {
		return &handshakeError{"reading RESUMED", err}
	}
	r, err := answerOf[wire.Resumed](f, "PROOF")
	if err != nil {
		return err
	}
	if !auth.Equal(r.MAC, rs.ServerMAC(c.secret, r.AppendFields(fb[:0]))) {
		return errServerProof
	}
	if !stop() {
		return ctx.Err()
	}
	_ = nc.SetDeadline(time.Time{})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return errEnded
	}
	if err := c.st.Resume(r.Positions); err != nil {
		err = localError(err)
		_, _ = nc.Write(wire.AppendFrame(nil, wire.Abort{Code: codeOf(err), Reason: err.Error()}))
		return err
	}
	cs.restored = r.Flags&wire.ResumedRestored != 0
	if cs.restored {
		if err := cs.restoredLocked(c, r); err != nil {
			_, _ = nc.Write(wire.AppendFrame(nil, wire.Abort{Code: codeOf(err), Reason: err.Error()}))
			c.failLocked(err)
			return err
		}
	}
	if r.Member != "" {
		cs.member = r.Member
	}
	cs.epoch, cs.address = r.Epoch, addr
	cs.reconnecting = false
	c.attachLocked(nc, br)
	return nil
}

// restoredLocked prepares the client for a server that restored the session
// from a checkpoint: the server regenerates output from r.Written on, and the
// client sends the digest of what it received since, to be compared.
func (cs *clientSide) restoredLocked(c *Conn, r wire.Resumed) error {
	from, to := r.Written, c.st.Received()
	if from > to {
		return fmt.Errorf("%w: server restored output at %d, beyond the %d bytes received", ErrProtocol, from, to)
	}
	// The new server may not know the end of our output, and must end its
	// own where we saw it end, if we did.
	c.st.PeerRestored()
	known := cs.markPositions()
	// Checkpoints announced after the restored one's position were abandoned
	// with the old server: the new one announces its own, at positions from
	// the client's on (numbered from the restored one again).
	i := len(cs.marks)
	for i > 0 && cs.marks[i-1].at.Pos > from {
		i--
	}
	cs.marks = cs.marks[:i]
	if from == to {
		// The new server restored at exactly what the client has: the
		// client's running digest is the digest at that checkpoint, which a
		// later restore may use again.
		if n := len(cs.marks); n == 0 || cs.marks[n-1].at.Pos != from {
			seq := uint64(0)
			if n > 0 {
				seq = cs.marks[n-1].seq
			}
			cs.marks = append(cs.marks, markDigest{seq: seq, in: r.Received, at: cs.digest})
		}
		return nil
	}
	at, ok := cs.digestAt(from)
	if !ok {
		return fmt.Errorf("%w: server restored at output %d, a position the client cannot check (it knew %s)", ErrDiverged, from, known)
	}
	cs.verify = &wire.Verify{From: from, To: to, CRC: digest.Between(at, cs.digest)}
	return nil
}

// answerOf returns f, the server's answer to what the client sent (named
// by sent), as the frame of type T the client waits for: a REFUSED becomes
// its refusedError, any other frame a protocol error.
func answerOf[T wire.Frame](f wire.Frame, sent string) (T, error) {
	var none T
	switch f := f.(type) {
	case T:
		return f, nil
	case wire.Refused:
		return none, refusedError(f)
	default:
		return none, fmt.Errorf("%w: %v in answer to %s", ErrProtocol, f.Type(), sent)
	}
}

// refusedError turns a REFUSED into the error a resume attempt returns.
func refusedError(f wire.Refused) error {
	if (f.Code == wire.CodeMoved || f.Code == wire.CodeDraining) && f.RedirectAddr != "" {
		return &redirectError{code: f.Code, name: f.RedirectName, addr: f.RedirectAddr}
	}
	return &PeerError{Code: ErrorCode(f.Code), Reason: f.Reason, Refused: true}
}

func (cs *clientSide) markPositions() string {
	var b []byte
	for i, m := range cs.marks {
		if i > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%d@%d", m.seq, m.at.Pos)
	}
	return string(b)
}

// knownLocked lists the output positions at which the client can check
// regenerated output: the checkpoints it was told of.
func (cs *clientSide) knownLocked() []uint64 {
	if !cs.pool {
		return nil
	}
	known := make([]uint64, 0, len(cs.marks))
	for _, m := range cs.marks {
		known = append(known, m.at.Pos)
	}
	return known
}

// marksForLog describes the checkpoint marks a client knows, for logs.
func (c *Conn) marksForLog() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		return ""
	}
	return c.client.markPositions()
}
