package mtcp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/transport"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/stream"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
)

// takeOver runs on a member that a client asks to resume a session it does
// not hold: the member fetches the session from the member that serves it
// (which checks the client's proof and freezes the session), restores the
// newest checkpoint the client can resume from, and serves it from there.
// The client is challenged before anything else: what became of a session
// (where it went, whether this member is draining it away) is for its
// client only.
func (n *node) takeOver(h *hsConn, hello wire.Hello) error {
	ch, proof, err := h.challenge()
	if err != nil || ch == nil {
		return err
	}
	p := proof.Positions
	req := handoverRequest{
		Session: hello.Session, ClientNonce: hello.Nonce, ServerNonce: ch.Nonce, MAC: proof.MAC,
		Epoch: hello.Epoch, Attempt: hello.Attempt, Origin: hello.Origin,
		Received: p.Received, Limit: p.Limit, Release: p.Release, Retained: p.Retained, Written: p.Written,
		Known: proof.Known,
	}
	if t, ok := n.movedTo(hello.Session); ok && hello.Epoch < t.epoch {
		// The client missed the move: send it to where the session went,
		// once it has shown it is the session's client.
		if !req.signed(t.secret) {
			return ErrBadProof
		}
		return t.redirect()
	}
	if n.pool.Local().Draining {
		return n.ln.drainingRefusal()
	}
	// Room for the session is kept before its member lets it go: refused
	// here, the session stays where it is and the client tries elsewhere.
	if !n.ln.reserveSession() {
		return fmt.Errorf("%w: %d sessions", ErrBusy, n.ln.cfg.MaxSessions)
	}
	// The proof is checked elsewhere (by the session's member or its
	// replicas), which takes a control-plane round trip or two: the
	// handshake is not closed to make room meanwhile (a client whose move
	// is under way would find it broken, and the handover done in vain),
	// but takeovers in flight are bounded apart: beyond MaxHandshakes of
	// them, a client is told busy at once and tries again.
	select {
	case n.ln.takeovers <- struct{}{}:
	default:
		n.ln.unreserveSession()
		return &refusal{wire.Refused{Code: wire.CodeBusy, Reason: "too many takeovers at once"}}
	}
	h.proven()
	start := time.Now()
	rec, epoch, from, failedOver, err := n.obtain(hello.Origin, req)
	<-n.ln.takeovers
	if err != nil {
		n.ln.unreserveSession()
		return err
	}
	c, err := n.restore(rec, epoch, p, hello.Attempt)
	n.ln.unreserveSession()
	if err != nil {
		return err
	}
	took := time.Since(start)
	n.ln.log.Info("mtcp: session taken over", "session", c.idStr, "from", from,
		"epoch", epoch, "checkpoint", rec.Seq, "took", took)
	if failedOver {
		n.ln.cfg.Metrics.FailedOver(took)
	} else {
		n.ln.cfg.Metrics.Moved(took)
	}
	n.serveRestored(c, h, auth.NewResume(hello, *ch), rec)
	return nil
}

// handoverProbe bounds the attempt to reach a session's member before
// taking the session from its replicas. Without replicas there is nowhere
// else to take it from, and a slow member is waited for up to the
// handshake timeout.
const handoverProbe = time.Second

// obtain gets a session's checkpoint for a takeover: from its member if it
// answers (a live migration), else from the members holding copies (a
// failover), fencing the member that lost it. It says where the checkpoint
// came from, for logs, and whether it was a failover.
func (n *node) obtain(originName string, req handoverRequest) (*snapshot.Record, uint64, string, bool, error) {
	origin, known := n.pool.Member(originName)
	if known && originName != n.name {
		wait := n.ln.cfg.HandshakeTimeout
		if n.replicas > 0 {
			wait = min(handoverProbe, wait)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		var rep handoverReply
		err := n.rpc.Call(ctx, origin.ControlAddr, kindHandover, req, &rep)
		cancel()
		var re *transport.RemoteError
		switch {
		case err == nil:
			rec, err := snapshot.Unmarshal(rep.Record, 0)
			if err != nil {
				return nil, 0, "", false, fmt.Errorf("%w: checkpoint from %s: %v", ErrProtocol, origin.Name, err)
			}
			n.confirmHandover(origin, req.Session, rep.Epoch)
			n.claimAsync(req.Session, rep.Epoch)
			return rec, rep.Epoch, origin.Name, false, nil
		case errors.As(err, &re) && re.Code != codeUnknown:
			return nil, 0, "", false, &refusal{*handoverError(err)} // it answered: no failover
		case n.replicas == 0 && re == nil:
			// It may be only slow: the client is to try again.
			return nil, 0, "", false, &refusal{wire.Refused{Code: wire.CodeBusy,
				Reason: fmt.Sprintf("the session's member %s does not answer (%v) and checkpoints are not replicated", originName, err)}}
		case n.replicas == 0: // it answered that it does not have the session
			return nil, 0, "", false, fmt.Errorf("%w: its member %s: %s", ErrUnknownSession, originName, re.Message)
		}
		n.ln.log.Info("mtcp: session's member does not answer, taking it from replicas",
			"session", fmt.Sprintf("%x", req.Session), "member", originName, "err", err)
	}
	if n.replicas == 0 {
		return nil, 0, "", false, fmt.Errorf("%w: its member %q is gone and checkpoints are not replicated", ErrUnknownSession, originName)
	}
	rec, epoch, err := n.failover(originName, req)
	return rec, epoch, "replicas of " + originName, err == nil, err
}

// failover takes a session whose member is gone from the checkpoints the
// other members hold: the newest the client can resume from, at an epoch
// above every one known, claimed on every member that answered.
func (n *node) failover(originName string, req handoverRequest) (*snapshot.Record, uint64, error) {
	// Own copies count too: this member may be a replica of the session.
	own := n.store.Records(req.Session)
	if len(own) > 0 && !req.signed(own[0].Secret) {
		return nil, 0, &refusal{wire.Refused{Code: wire.CodeBadProof, Reason: "the client's proof does not check out"}}
	}
	var others []pool.Member
	for _, m := range n.pool.Members() {
		if m.Name != n.name && m.Name != originName {
			others = append(others, m)
		}
	}
	type answer struct {
		m   pool.Member
		rep fetchReply
		err error
	}
	answers := make([]answer, len(others))
	ctx, cancel := context.WithTimeout(context.Background(), n.ln.cfg.HandshakeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, m := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].m = m
			answers[i].err = n.rpc.Call(ctx, m.ControlAddr, kindFetch, req, &answers[i].rep)
		}()
	}
	wg.Wait()
	recs := own
	epoch := n.store.Epoch(req.Session)
	var holders []pool.Member
	for _, a := range answers {
		var re *transport.RemoteError
		if errors.As(a.err, &re) && re.Code == codeBadProof {
			return nil, 0, &refusal{*handoverError(a.err)}
		}
		if a.err != nil {
			continue
		}
		holders = append(holders, a.m)
		epoch = max(epoch, a.rep.Epoch)
		for _, b := range a.rep.Records {
			r, err := snapshot.Unmarshal(b, 0)
			if err == nil && r.Session == req.Session {
				recs = append(recs, r)
				epoch = max(epoch, r.Epoch)
			}
		}
	}
	if len(recs) == 0 {
		var asked []string
		for _, a := range answers {
			asked = append(asked, fmt.Sprintf("%s: %v", a.m.Name, a.err))
		}
		n.ln.log.Warn("mtcp: no checkpoint of the session found", "session", fmt.Sprintf("%x", req.Session), "asked", asked)
		return nil, 0, fmt.Errorf("%w: no member holds a checkpoint of it", ErrUnknownSession)
	}
	rec := snapshot.Choose(recs, req.Received, req.Retained, req.knows)
	if rec == nil {
		var seen []string
		for _, r := range recs {
			seen = append(seen, fmt.Sprintf("e%d/s%d in %d out %d known %v", r.Epoch, r.Seq, r.InPos, r.OutPos, req.knows(r.OutPos)))
		}
		n.ln.log.Warn("mtcp: no checkpoint fits the client", "received", req.Received, "retained", req.Retained,
			"checkpoints", seen, "holders", len(holders))
		return nil, 0, &refusal{wire.Refused{Code: wire.CodeNotMovable,
			Reason: fmt.Sprintf("no checkpoint fits the client (received %d, retains input from %d)", req.Received, req.Retained)}}
	}
	newEpoch := epoch + 1
	// Every member that answers learns the new epoch, not only those with
	// copies: the member that lost the session may write to any of them.
	if err := n.claim(req.Session, newEpoch, others); err != nil {
		return nil, 0, err
	}
	// The member that lost the session may only be slow: it learns the new
	// epoch too, and ends its copy of the session, without the takeover
	// waiting for it.
	if origin, ok := n.pool.Member(originName); ok && originName != n.name {
		n.background(func() { _ = n.claim(req.Session, newEpoch, []pool.Member{origin}) })
	}
	return rec, newEpoch, nil
}

// claim fences the epochs before epoch on this member and on the holders
// of the session's checkpoints. A holder that knows a newer claim makes
// the takeover fail: another member has the session.
func (n *node) claim(session [wire.SessionIDLen]byte, epoch uint64, holders []pool.Member) error {
	if err := n.store.Claim(session, epoch, n.name); err != nil {
		return &refusal{wire.Refused{Code: wire.CodeStaleEpoch, Reason: err.Error()}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.ln.cfg.HandshakeTimeout)
	defer cancel()
	errs := make([]error, len(holders))
	var wg sync.WaitGroup
	for i, m := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.rpc.Call(ctx, m.ControlAddr, kindClaim, claimRequest{Session: session, Epoch: epoch}, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		var re *transport.RemoteError
		if errors.As(err, &re) && re.Code == codeStale {
			return &refusal{wire.Refused{Code: wire.CodeStaleEpoch, Reason: holders[i].Name + ": " + re.Message}}
		}
	}
	return nil
}

// claimAsync fences older epochs on the session's replicas after a live
// handover (the old member froze the session already).
func (n *node) claimAsync(session [wire.SessionIDLen]byte, epoch uint64) {
	if n.replicas == 0 {
		return
	}
	_ = n.store.Claim(session, epoch, n.name)
	var others []pool.Member
	for _, m := range n.pool.Members() {
		if m.Name != n.name {
			others = append(others, m)
		}
	}
	n.background(func() { _ = n.claim(session, epoch, others) })
}

// restore builds the session from a checkpoint, given what the client
// holds. If the session is here already (a concurrent takeover of it won),
// it refuses: the client's next attempt resumes that one.
func (n *node) restore(rec *snapshot.Record, epoch uint64, client wire.Positions, attempt uint64) (*Conn, error) {
	rec = rec.Clone() // this member's own copy: it may come from the replica store
	cfg := &n.ln.cfg
	// Consistent by Choose: the client has the output before rec.OutPos.
	st, err := stream.Restore(stream.Config{
		Window: cfg.Window, Retention: cfg.Retention,
		PeerRetention: int(rec.Params.ClientRetention), ManualRelease: true, Memory: n.ln.mem,
	}, rec.InPos, rec.OutPos, client)
	if err != nil {
		return nil, fmt.Errorf("%w: restoring checkpoint %d: %v", ErrProtocol, rec.Seq, err)
	}
	rec.Epoch, rec.Origin = epoch, n.name // this member's copy of it, from now on
	s := &serverSide{
		ln: n.ln, node: n, epoch: epoch, params: rec.Params,
		ckpts: []*snapshot.Record{rec}, durable: rec, nextSeq: rec.Seq, state: slices.Clone(rec.State),
		repl:     replication{done: map[uint64]bool{rec.Seq: true}, everything: true},
		resumed:  true,        // its client came back to this member
		explicit: rec.Seq > 0, // restored from its application's checkpoint, not the implicit one
		attempt:  attempt,     // the resume that brought it here
	}
	if st.Regenerating() {
		st.Hold(true) // nothing new goes out until the regenerated bytes check out
		s.verifyPending = true
	}
	c := newConn(roleServer, rec.Session, rec.Secret, st, sessionParams{
		keepAlive:        time.Duration(rec.Params.KeepAliveMillis) * time.Millisecond,
		keepAliveTimeout: time.Duration(rec.Params.KeepAliveTimeoutMillis) * time.Millisecond,
		linger:           cfg.DetachTimeout,
		log:              cfg.Logger,
		metrics:          cfg.Metrics,
		mem:              n.ln.mem,
	})
	c.server = s
	n.ln.mu.Lock()
	if other := n.ln.sessions[rec.Session]; other != nil {
		n.ln.mu.Unlock()
		return nil, &refusal{wire.Refused{Code: wire.CodeBusy, Reason: "the session is being taken over by another attempt"}}
	}
	n.ln.sessions[rec.Session] = c
	n.ln.mu.Unlock()
	c.mu.Lock()
	c.replicateLocked() // the copies now belong to this member's epoch
	if s.verifyPending {
		c.watchRegeneration(client.Written)
	}
	c.mu.Unlock()
	return c, nil
}

// serveRestored finishes the client's handshake on a restored session and
// hands the session to Accept, however long the application takes to
// accept it.
func (n *node) serveRestored(c *Conn, h *hsConn, rs auth.Resume, rec *snapshot.Record) {
	nc, br := h.nc, h.br
	c.mu.Lock()
	s := c.server
	pos := c.st.Positions()
	pos.Written = rec.OutPos
	r := wire.Resumed{Positions: pos, Epoch: s.epoch, Flags: wire.ResumedRestored, Node: n.name}
	c.mu.Unlock()
	r.MAC = rs.ServerMAC(c.secret, r.Fields())
	_, err := nc.Write(wire.AppendFrame(nil, r))
	c.mu.Lock()
	if err != nil {
		_ = nc.Close()
		c.addrs.Store(&addrPair{local: nc.LocalAddr(), remote: nc.RemoteAddr()})
		s.detached(c, fmt.Errorf("sending RESUMED: %w", err))
	} else {
		_ = nc.SetDeadline(time.Time{})
		c.attachLocked(nc, br)
	}
	c.mu.Unlock()
	if !n.ln.deliverMoved(c) {
		c.fail(ErrListenerClosed)
	}
}
