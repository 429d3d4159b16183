package mtcp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/migratory/mtcp/snapshot"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/stream"
	"github.com/migratory/mtcp/internal/wire"
)

// hsConn is a connection in its handshake.
type hsConn struct {
	ln       *Listener
	nc       net.Conn // what the handshake speaks on (inside TLS, if any)
	raw      net.Conn // the accepted connection, as the listener tracks it
	br       *bufio.Reader
	deadline time.Time // the whole handshake's
}

// proven takes the connection out of the handshakes that the listener may
// close to make room: it is a plain client, or an mtcp client that needs
// nothing more from the peer (a new session), or one whose proof of the
// session secret checked out. Until then, whatever it sent, it is a
// stranger that may be evicted.
func (h *hsConn) proven() { h.ln.identified(h.raw) }

// waiting marks the time the handshake waits for its peer (or, on a
// takeover, for the proof to be checked elsewhere) with the patience it
// gets (0 ends the wait): only that time counts when the listener looks
// for a handshake to close to make room.
func (h *hsConn) waiting(patience time.Duration) { h.ln.waiting(h.raw, patience) }

// handshake runs on a freshly accepted connection: TLS, then the test for
// an mtcp preface, then the mtcp handshake for a new session or a resume,
// all within the handshake timeout from since, when it was accepted.
func (ln *Listener) handshake(nc net.Conn, since time.Time) {
	cfg := &ln.cfg
	h := &hsConn{ln: ln, nc: nc, raw: nc, deadline: since.Add(cfg.HandshakeTimeout)}
	if cfg.TLS != nil {
		h.waiting(evictAfter) // TLS takes round trips
		ctx, cancel := context.WithDeadline(context.Background(), h.deadline)
		tc := tls.Server(nc, cfg.TLS)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			if logOn(ln.log, slog.LevelDebug) {
				ln.log.Debug("mtcp: TLS handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
			}
			_ = nc.Close()
			return
		}
		h.nc = tc
	}
	h.waiting(evictSilentAfter)
	h.br = newHandshakeReader(h.nc)
	prefix, class, err := sniff(h.br, h.nc, h.deadline, cfg.FirstByteTimeout)
	h.waiting(0)
	if class != clientMTCP || err != nil {
		releaseHandshakeReader(h.br) // its bytes are in prefix
		h.br = nil
	}
	switch {
	case err != nil:
		_ = nc.Close()
		return
	case class == clientSilent:
		if logOn(ln.log, slog.LevelDebug) {
			ln.log.Debug("mtcp: client said too little within the handshake timeout", "remote", nc.RemoteAddr().String(), "bytes", len(prefix))
		}
		_ = nc.Close()
		return
	case class == clientPlain:
		h.proven()
		if cfg.RejectPlain {
			if logOn(ln.log, slog.LevelDebug) {
				ln.log.Debug("mtcp: plain client rejected", "remote", nc.RemoteAddr().String())
			}
			_ = nc.Close()
			return
		}
		ln.keepPlainAlive(nc)
		if !ln.deliver(newPlainConn(h.nc, prefix)) {
			_ = nc.Close()
		}
		return
	}
	_ = h.nc.SetDeadline(h.deadline)
	h.waiting(evictSilentAfter) // the HELLO comes with the preface (read with it, most often)
	f, err := wire.ReadFrameOf(h.br, wire.TypeHello)
	h.waiting(0)
	if err != nil {
		ln.refuse(h.nc, nc.RemoteAddr(), fmt.Errorf("%w: reading HELLO: %v", ErrProtocol, err))
		return
	}
	hello := f.(wire.Hello)
	if hello.MinVersion > wire.Version || hello.MaxVersion < wire.Version {
		ln.refuse(h.nc, nc.RemoteAddr(), fmt.Errorf("%w: client speaks %d..%d, server %d",
			ErrVersion, hello.MinVersion, hello.MaxVersion, wire.Version))
		return
	}
	if hello.Resume {
		if ln.admitIncoming(h, hello) {
			defer ln.incomingDone()
		}
		err = ln.serveResume(h, hello)
	} else {
		h.proven() // a new session waits for nothing more from its client
		err = ln.serveNew(h, hello)
	}
	if err != nil {
		ln.refuse(h.nc, nc.RemoteAddr(), err)
	}
}

// refuse answers a failed handshake with REFUSED and closes the connection.
func (ln *Listener) refuse(nc net.Conn, remote net.Addr, err error) {
	if logOn(ln.log, slog.LevelDebug) {
		ln.log.Debug("mtcp: handshake refused", "remote", remote.String(), "err", err)
	}
	f := wire.Refused{Code: codeOf(err), Reason: err.Error()}
	var r *refusal
	if errors.As(err, &r) {
		f = r.f
	}
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write(wire.AppendFrame(nil, f))
	_ = nc.Close()
}

// refusal is a handshake error with a REFUSED of its own (a redirect).
type refusal struct{ f wire.Refused }

// drainingRefusal is a draining member's answer: it takes no sessions, and
// suggests a member that does, chosen by spare capacity (pool.Pick), so
// that its clients spread.
func (ln *Listener) drainingRefusal() *refusal {
	r := wire.Refused{Code: wire.CodeDraining, Reason: "the server is draining"}
	if n := ln.member; n != nil {
		if m, ok := n.Membership().Pick(n.Name()); ok {
			r.RedirectName, r.RedirectAddr = m.Name, m.ClientAddr
		}
	}
	return &refusal{r}
}

func (r *refusal) Error() string { return r.f.Code.String() + ": " + r.f.Reason }

// clientKeepAlive bounds the keepalive settings a client asked for.
func clientKeepAlive(h wire.Hello) (interval, timeout time.Duration) {
	return boundKeepAlive(time.Duration(h.KeepAliveMillis)*time.Millisecond,
		time.Duration(h.KeepAliveTimeoutMillis)*time.Millisecond)
}

// boundKeepAlive puts keepalive settings within what the wire can say and
// what makes sense: the timeout above the interval.
func boundKeepAlive(interval, timeout time.Duration) (time.Duration, time.Duration) {
	interval = clamp(interval, minKeepAlive, maxKeepAliveWire-time.Second)
	return interval, clamp(timeout, interval+minKeepAlive, maxKeepAliveWire)
}

func (ln *Listener) serveNew(h *hsConn, hello wire.Hello) error {
	cfg := &ln.cfg
	nc, br := h.nc, h.br
	if ln.draining.Load() {
		return ln.drainingRefusal()
	}
	if hello.Window < minBufferSize || hello.Retention < minBufferSize {
		return fmt.Errorf("%w: window %d and retention %d below %d", ErrProtocol, hello.Window, hello.Retention, minBufferSize)
	}
	kp, err := ln.keys.Get()
	if err != nil {
		return err
	}
	id := auth.SessionID()
	secret, err := kp.DeriveSecret(hello.Key, id, hello.Key, kp.Pub)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	interval, timeout := clientKeepAlive(hello)
	st := stream.New(stream.Config{
		Window: cfg.Window, Retention: cfg.Retention, PeerRetention: int(hello.Retention),
		ManualRelease: ln.member != nil, Memory: ln.mem,
	}, uint64(hello.Window))
	c := newConn(roleServer, id, secret, st, sessionParams{
		keepAlive: interval, keepAliveTimeout: timeout, idleProbe: max(cfg.IdleProbe, interval), timers: ln.timers,
		linger: cfg.DetachTimeout, log: cfg.Logger,
		metrics: cfg.Metrics, mem: ln.mem,
	})
	c.server = &serverSide{ln: ln, member: ln.member, epoch: 1, params: snapshot.Params{
		ClientWindow: hello.Window, ClientRetention: hello.Retention,
		KeepAliveMillis: uint16(interval / time.Millisecond), KeepAliveTimeoutMillis: uint16(timeout / time.Millisecond),
	}}
	ln.mu.Lock()
	if ln.fullLocked() {
		ln.mu.Unlock()
		return fmt.Errorf("%w: %d sessions", ErrBusy, cfg.MaxSessions)
	}
	ln.sessions[id] = c
	ln.mu.Unlock()
	if n := ln.member; n != nil && n.Replicas() > 0 {
		c.server.copies = n.NewCopies(id, copySource{c})
		c.copyStart(h.deadline)
	}
	w := wire.Welcome{
		Version: wire.Version, Session: id, Key: kp.Pub,
		Window: uint32(cfg.Window), Retention: uint32(cfg.Retention),
		KeepAliveMillis:        uint16(interval / time.Millisecond),
		KeepAliveTimeoutMillis: uint16(timeout / time.Millisecond),
		Epoch:                  1,
	}
	if ln.member != nil {
		w.Flags, w.Member = wire.WelcomePool, ln.member.Name()
	}
	if _, err := nc.Write(wire.AppendFrame(nil, w)); err != nil {
		c.fail(fmt.Errorf("sending WELCOME: %w", err))
		_ = nc.Close()
		return nil
	}
	_ = nc.SetDeadline(time.Time{})
	c.mu.Lock()
	c.attachLocked(nc, br)
	c.mu.Unlock()
	if logOn(c.log, slog.LevelDebug) {
		c.log.Debug("mtcp: session opened", "client", nc.RemoteAddr().String())
	}
	cfg.Metrics.SessionOpened()
	if !ln.deliver(c) {
		c.fail(ErrBusy)
	}
	return nil
}

func (ln *Listener) serveResume(h *hsConn, hello wire.Hello) error {
	c := ln.session(hello.Session)
	if c == nil {
		if ln.member != nil && ln.member.Replicas() > 0 {
			return ln.takeOver(h, hello) // an evicted session too: its copies remain
		}
		if ln.wasEvicted(hello.Session) {
			return fmt.Errorf("%w while its client was away", ErrEvicted)
		}
		if ln.member != nil {
			return ln.takeOver(h, hello)
		}
		return ErrUnknownSession
	}
	nc, br := h.nc, h.br
	ch, proof, err := h.challenge()
	if err != nil || ch == nil {
		return err
	}
	rs := auth.NewResume(hello, *ch)
	var fb [wire.FieldsRoom]byte
	if !auth.Equal(proof.MAC, rs.ClientMAC(c.secret, proof.AppendFields(fb[:0]))) {
		c.log.Warn("mtcp: resume with a bad proof refused", "remote", nc.RemoteAddr().String())
		return ErrBadProof
	}
	h.proven()
	if !c.server.newAttempt(c, hello.Attempt) {
		return &refusal{wire.Refused{Code: wire.CodeStaleEpoch, Reason: "a newer resume of the session came first"}}
	}
	if s := c.server; s.member != nil && hello.Epoch > s.epoch {
		// The client knows a newer epoch: another member took the session
		// over while this one was cut off. It is not this member's anymore.
		c.fenced(hello.Epoch, "a member at epoch "+strconv.FormatUint(hello.Epoch, 10))
		return &refusal{wire.Refused{Code: wire.CodeStaleEpoch, Reason: "another member holds the session"}}
	}
	if n := ln.member; n != nil && n.Replicas() > 0 {
		if err := n.ConfirmEpoch(poolSession{c}); err != nil {
			return poolRefusal(err)
		}
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		if n := ln.member; n != nil {
			if t, ok := n.MovedTo(c.id); ok { // handed over during this handshake
				return &refusal{t.Redirect()}
			}
		}
		return ErrUnknownSession
	}
	if old := c.link; old != nil {
		c.link = nil
		old.shutdown()
	}
	s := c.server
	s.reattached()
	s.resumedHereLocked(c)
	if s.moveTo != nil && s.moveSent && s.moveSends < maxMoveSends {
		// The client came back here instead of moving (its move failed,
		// or the link it was sent the MOVE on broke first): it is asked
		// again on this link, settled again.
		s.moveSends++
		s.askMoveLocked(c, *s.moveTo)
	}
	if err := c.st.Resume(proof.Positions); err != nil {
		err = localError(err)
		c.failLocked(err)
		c.mu.Unlock()
		return err
	}
	pos := c.st.Positions()
	s.resumeGen++
	gen := s.resumeGen
	r := wire.Resumed{Epoch: s.epoch}
	if s.member != nil {
		r.Member = s.member.Name()
	}
	if s.verifyPending { // the client's digest of regenerated output is still due
		from, _, _, _ := c.st.RegeneratedDigest()
		pos.Written, r.Flags = from, wire.ResumedRestored
	}
	c.mu.Unlock()

	r.Positions = pos
	r.MAC = rs.ServerMAC(c.secret, r.AppendFields(fb[:0]))
	_, err = nc.Write(wire.AppendFrame(nil, r))
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || s.resumeGen != gen || c.ended || c.link != nil {
		_ = nc.Close()
		if c.link == nil && !c.ended && s.resumeGen == gen {
			s.detached(c, errors.Join(errors.New("sending RESUMED"), err))
		}
		return nil
	}
	_ = nc.SetDeadline(time.Time{})
	s.resumed = true
	c.attachLocked(nc, br)
	if logOn(c.log, slog.LevelInfo) {
		c.log.Info("mtcp: session resumed", "client", nc.RemoteAddr().String(), "detached", time.Since(s.detachedAt))
	}
	ln.cfg.Metrics.Resumed(time.Since(s.detachedAt))
	return nil
}

// maxMoveSends bounds the MOVEs sent again to a client that keeps coming
// back instead of moving: a target that always refuses does not make it
// go back and forth for ever.
const maxMoveSends = 3

// proofWait is the share of the handshake timeout a client has to answer
// a CHALLENGE with its PROOF: a resume is one round trip, a third of the
// time a whole handshake may take.
const proofWait = 3

// challenge sends a fresh nonce and reads the client's PROOF, waiting at
// most a third of the handshake timeout. A nil challenge with a nil error
// means the connection broke (and is closed).
func (h *hsConn) challenge() (*wire.Challenge, wire.Proof, error) {
	ch := &wire.Challenge{Nonce: auth.Nonce()}
	if _, err := h.nc.Write(wire.AppendFrame(nil, *ch)); err != nil {
		_ = h.nc.Close()
		return nil, wire.Proof{}, nil
	}
	_ = h.nc.SetReadDeadline(minTime(h.deadline, time.Now().Add(h.ln.cfg.HandshakeTimeout/proofWait)))
	h.waiting(evictAfter)
	f, err := wire.ReadFrameOf(h.br, wire.TypeProof)
	h.waiting(0)
	_ = h.nc.SetReadDeadline(h.deadline)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// A client slow to answer (or a loaded machine) is no protocol
			// error: told so, it tries again instead of losing its session.
			return nil, wire.Proof{}, &refusal{wire.Refused{Code: wire.CodeBusy, Reason: "the PROOF did not come in time"}}
		}
		return nil, wire.Proof{}, fmt.Errorf("%w: reading PROOF: %v", ErrProtocol, err)
	}
	return ch, f.(wire.Proof), nil
}
