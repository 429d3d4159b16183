package pool

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
	"github.com/migratory/mtcp/transport"
)

// Refused is the answer a client's resume gets when a takeover cannot be
// made: its REFUSED frame.
type Refused struct{ Frame wire.Refused }

// Error says the REFUSED frame's code and reason.
func (r *Refused) Error() string { return r.Frame.Code.String() + ": " + r.Frame.Reason }

func refused(code wire.Code, format string, args ...any) *Refused {
	return &Refused{wire.Refused{Code: code, Reason: fmt.Sprintf(format, args...)}}
}

// TakenOver is a session's checkpoint obtained for a takeover.
type TakenOver struct {
	Record     *snapshot.Record // the newest checkpoint the client can resume from
	Epoch      uint64           // the session's epoch on this member from now on
	From       string           // where it came from, for logs
	FailedOver bool             // taken from the replicas of a member that was gone
}

// handoverProbe bounds the attempt to reach a session's member before
// taking the session from its replicas. Without replicas there is nowhere
// else to take it from, and a slow member is waited for up to the
// handshake timeout.
const handoverProbe = time.Second

// TakeOver gets a session's checkpoint for a takeover, for the client whose
// proven request is req: from its member if it answers (a live move), else
// from the members holding copies (a failover), fencing the member that
// lost it. Its errors are *Refused.
func (n *Runtime) TakeOver(req HandoverRequest) (TakenOver, error) {
	originName := req.Origin
	origin, known := n.members.Member(originName)
	if m, ok := n.members.Gone(originName, 2*n.cfg.HandshakeTimeout); !known && ok && m.Draining {
		// A draining member that left this member's view a moment ago
		// (under load gossip declares members dead for a while) still
		// hands its sessions over: it is asked, not failed over while it
		// serves them. Gone for longer, it is taken for dead.
		origin, known = m, true
	}
	if known && originName != n.name {
		wait := n.cfg.HandshakeTimeout
		switch {
		case origin.Draining:
			// It drains and hands its sessions over: its handover is to win,
			// even slow, not a takeover from its replicas that would fence
			// it while it answers. The client, whose own handshake has about
			// as long, is answered before it gives up.
			wait /= 2
		case n.replicas > 0:
			wait = min(handoverProbe, wait)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		rep, err := n.callHandover(ctx, origin, req)
		cancel()
		var re *transport.RemoteError
		switch {
		case err == nil:
			rec, err := snapshot.Unmarshal(rep.Record, 0)
			if err != nil {
				return TakenOver{}, refused(wire.CodeProtocol, "checkpoint from %s: %v", origin.Name, err)
			}
			n.settleHandover(origin, req.Session, rep.Epoch)
			n.noteFled(origin.Name)
			n.claimAsync(req.Session, rep.Epoch, origin.Name)
			return TakenOver{Record: rec, Epoch: rep.Epoch, From: origin.Name}, nil
		case errors.As(err, &re) && re.Code == CodeNotMember:
			// It serves the session but does not know this member yet (or
			// for a moment): the client is to try again.
			return TakenOver{}, refused(wire.CodeBusy, "the session's member %s: %s", originName, re.Message)
		case errors.As(err, &re) && re.Code != CodeUnknown:
			return TakenOver{}, &Refused{remoteRefusal(err)} // it answered: no failover
		case origin.Draining && re == nil:
			// Alive and draining, only slow: the client is to try again (at
			// its member, which still has the session or says where it
			// went), not to take the session from under a handover.
			return TakenOver{}, refused(wire.CodeBusy,
				"the session's member %s drains and did not hand the session over in time (%v)", originName, err)
		case n.replicas == 0 && re == nil:
			// It may be only slow: the client is to try again.
			return TakenOver{}, refused(wire.CodeBusy,
				"the session's member %s does not answer (%v) and checkpoints are not replicated", originName, err)
		case n.replicas == 0: // it answered that it does not have the session
			return TakenOver{}, refused(wire.CodeUnknownSession, "its member %s: %s", originName, re.Message)
		}
		n.log.Info("mtcp: session's member does not answer, taking it from replicas",
			"session", fmt.Sprintf("%x", req.Session), "member", originName, "err", err)
	}
	if n.replicas == 0 {
		return TakenOver{}, refused(wire.CodeUnknownSession, "its member %q is gone and checkpoints are not replicated", originName)
	}
	rec, epoch, err := n.failover(originName, req)
	if err != nil {
		return TakenOver{}, err
	}
	return TakenOver{Record: rec, Epoch: epoch, From: "replicas of " + originName, FailedOver: true}, nil
}

// failover takes a session whose member is gone from the checkpoints the
// other members hold: the newest the client can resume from, at an epoch
// above every one known, claimed on every member that answered.
func (n *Runtime) failover(originName string, req HandoverRequest) (*snapshot.Record, uint64, error) {
	// Own copies count too: this member may be a replica of the session.
	own := n.store.Records(req.Session)
	if len(own) > 0 && !req.Signed(auth.Secret(own[0].Secret)) {
		return nil, 0, refused(wire.CodeBadProof, "the client's proof does not check out")
	}
	var others []Member
	for _, m := range n.members.Members() {
		if m.Name != n.name && m.Name != originName {
			others = append(others, m)
		}
	}
	type answer struct {
		m   Member
		rep fetchReply
		err error
	}
	answers := make([]answer, len(others))
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.HandshakeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, m := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].m = m
			answers[i].err = n.call(ctx, m.ControlAddr, KindFetch, req, &answers[i].rep)
		}()
	}
	wg.Wait()
	recs := own
	epoch := n.store.Epoch(req.Session)
	var holders []Member
	for _, a := range answers {
		var re *transport.RemoteError
		if errors.As(a.err, &re) && re.Code == CodeBadProof {
			return nil, 0, &Refused{remoteRefusal(a.err)}
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
		n.log.Warn("mtcp: no checkpoint of the session found", "session", fmt.Sprintf("%x", req.Session), "asked", asked)
		return nil, 0, refused(wire.CodeUnknownSession, "no member holds a checkpoint of it")
	}
	rec := snapshot.Choose(recs, req.Received, req.Retained, req.Knows)
	if rec == nil {
		var seen []string
		for _, r := range recs {
			seen = append(seen, fmt.Sprintf("e%d/s%d in %d out %d known %v", r.Epoch, r.Seq, r.InPos, r.OutPos, req.Knows(r.OutPos)))
		}
		n.log.Warn("mtcp: no checkpoint fits the client", "received", req.Received, "retained", req.Retained,
			"checkpoints", seen, "holders", len(holders))
		return nil, 0, refused(wire.CodeNotMovable,
			"no checkpoint fits the client (received %d, retains input from %d)", req.Received, req.Retained)
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
	if origin, ok := n.members.Member(originName); ok && originName != n.name {
		n.background(func() { _ = n.claim(req.Session, newEpoch, []Member{origin}) })
	}
	return rec, newEpoch, nil
}

// claim fences the epochs before epoch on this member and on holders. A
// holder that knows a newer claim makes the takeover fail: another member
// has the session.
func (n *Runtime) claim(session [wire.SessionIDLen]byte, epoch uint64, holders []Member) error {
	if err := n.store.Claim(session, epoch, n.name); err != nil {
		return refused(wire.CodeStaleEpoch, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.HandshakeTimeout)
	defer cancel()
	errs := make([]error, len(holders))
	var wg sync.WaitGroup
	for i, m := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.call(ctx, m.ControlAddr, KindClaim, claimRequest{Session: session, Epoch: epoch}, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		var re *transport.RemoteError
		if errors.As(err, &re) && re.Code == CodeStale {
			return refused(wire.CodeStaleEpoch, "%s: %s", holders[i].Name, re.Message)
		}
	}
	return nil
}

// claimAsync fences older epochs on the session's replicas after a live
// handover by origin, which froze the session and knows the new epoch
// already (it claimed it when it answered): the others are told. The
// members that are to hold the session's copies from now on are told by
// the first copy (a copy of a newer epoch claims it: handleCopy), which the
// session restored here sends at once (Copies.CopyAll): one call to each,
// not two.
func (n *Runtime) claimAsync(session [wire.SessionIDLen]byte, epoch uint64, origin string) {
	if n.replicas == 0 {
		return
	}
	_ = n.store.Claim(session, epoch, n.name)
	copies := n.members.Replicas(hex.EncodeToString(session[:]), n.replicas)
	var others []Member
	for _, m := range n.members.Members() {
		if m.Name != n.name && m.Name != origin && !slices.ContainsFunc(copies, func(c Member) bool { return c.Name == m.Name }) {
			others = append(others, m)
		}
	}
	if len(others) > 0 {
		n.background(func() { _ = n.claim(session, epoch, others) })
	}
}

// remoteRefusal turns a failed handover or fetch call into the REFUSED the
// client gets.
func remoteRefusal(err error) wire.Refused {
	var re *transport.RemoteError
	if !errors.As(err, &re) {
		return wire.Refused{Code: wire.CodeInternal, Reason: "the session's member did not answer: " + err.Error()}
	}
	switch re.Code {
	case CodeMoved:
		name, addr, _ := strings.Cut(re.Message, " ")
		return wire.Refused{Code: wire.CodeMoved, Reason: "the session moved", RedirectName: name, RedirectAddr: addr}
	case CodeUnknown:
		return wire.Refused{Code: wire.CodeUnknownSession, Reason: re.Message}
	case CodeBadProof:
		return wire.Refused{Code: wire.CodeBadProof, Reason: re.Message}
	case CodeNotMovable:
		return wire.Refused{Code: wire.CodeNotMovable, Reason: re.Message}
	case CodeStale:
		return wire.Refused{Code: wire.CodeStaleEpoch, Reason: re.Message}
	}
	return wire.Refused{Code: wire.CodeInternal, Reason: re.Error()}
}
