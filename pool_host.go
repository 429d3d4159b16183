package mtcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/snapshot"
)

// The listener's side of its pool: the narrow interface through which the
// pool runtime (package pool) reaches the sessions. Nothing else in this
// package knows how moves, copies or fencing are coordinated.

// startMember joins the pool cfg describes, for ln's sessions.
func startMember(ln *Listener, cfg *Config) (*pool.Runtime, error) {
	addr := cfg.Advertise
	if addr == "" {
		addr = ln.inner.Addr().String()
	}
	name := cfg.NodeName
	if name == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(addr)
		name = wire.TruncateUTF8(host, wire.MaxNameLen-len(port)-1) + ":" + port
	}
	n, err := pool.StartRuntime(pool.RuntimeConfig{
		Name: name, ClientAddr: addr, Gossip: cfg.Gossip, Join: cfg.Join, Key: cfg.PoolKey,
		Control: cfg.Control, Replicas: cfg.Replicas, Profile: cfg.PoolProfile, Logger: cfg.Logger,
		HandshakeTimeout: cfg.HandshakeTimeout, DetachTimeout: cfg.DetachTimeout,
		ReplicaMemory: cfg.ReplicaMemory, ReplicaKeep: maxCheckpoints + 2, Balance: cfg.Balance,
	}, poolHost{ln})
	if err != nil {
		return nil, fmt.Errorf("mtcp: pool: %w", err)
	}
	return n, nil
}

// poolHost is a Listener as the pool runtime sees it.
type poolHost struct{ ln *Listener }

func (h poolHost) Session(id [wire.SessionIDLen]byte) (pool.Session, bool) {
	c := h.ln.session(id)
	if c == nil {
		return nil, false
	}
	return poolSession{c}, true
}

func (h poolHost) Sessions() []pool.Session {
	list := h.ln.sessionList()
	out := make([]pool.Session, len(list))
	for i, c := range list {
		out[i] = poolSession{c}
	}
	return out
}

func (h poolHost) SessionCount() int { return h.ln.Sessions() }
func (h poolHost) Draining() bool    { return h.ln.draining.Load() }

// poolSession is a server session as the pool runtime sees it.
type poolSession struct{ c *Conn }

func (s poolSession) ID() [wire.SessionIDLen]byte { return s.c.id }
func (s poolSession) Secret() auth.Secret         { return s.c.secret }

func (s poolSession) Epoch() uint64 {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.c.server.epoch
}

func (s poolSession) Fence(epoch uint64, by string) { s.c.fenced(epoch, by) }
func (s poolSession) AskMove(m wire.Move) bool      { return s.c.requestMove(m) }
func (s poolSession) Ended() bool                   { return s.c.isEnded() }

// MovePending reports whether a MOVE asked of the session's client has not
// gone out yet (pool.MovePending): its client is away, and gets it on the
// link it comes back on.
func (s poolSession) MovePending() bool {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	ss := c.server
	return !c.ended && ss.moveTo != nil && !ss.moveSent
}

func (s poolSession) MembersChanged(news, topology bool) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if news && c.link != nil {
		c.link.kickNow()
	}
	if topology && c.server.copies != nil {
		c.server.copies.MembersChanged()
	}
}

// HandOver gives the session to successor (see pool.Session): the newest
// checkpoint its client can resume from goes, and the session ends here.
func (s poolSession) HandOver(ctx context.Context, req *pool.HandoverRequest, successor string,
	commit func(rec *snapshot.Record, epoch uint64)) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	ss := c.server
	if c.ended {
		return &pool.ControlError{Code: pool.CodeUnknown, Message: "the session ended"}
	}
	if !ss.newAttemptLocked(req.Attempt) {
		// The client gave this attempt up and resumed here since: the
		// positions it carries are not the client's anymore.
		return &pool.ControlError{Code: pool.CodeStale, Message: "a newer resume of the session's client reached this member"}
	}
	if !ss.explicit {
		return &pool.ControlError{Code: pool.CodeNotMovable, Message: "the application does not checkpoint"}
	}
	rec := snapshot.Choose(ss.ckpts, req.Received, req.Retained, req.Knows)
	if rec == nil {
		return &pool.ControlError{Code: pool.CodeNotMovable, Message: fmt.Sprintf(
			"no checkpoint fits the client (received %d, retains input from %d)", req.Received, req.Retained)}
	}
	if err := ctx.Err(); err != nil {
		// The successor gave up: it will not restore the session, which
		// goes on here (its client resumes here or asks again).
		if logOn(c.log, slog.LevelInfo) {
			c.log.Info("mtcp: handover request came too late", "to", successor, "err", err)
		}
		return err
	}
	epoch := ss.epoch + 1
	commit(rec, epoch)
	// Settled: the checkpoint covers all the application read and wrote
	// (a move that waited for a boundary), so nothing is regenerated.
	settled := rec.InPos == c.st.Consumed() && rec.OutPos == c.st.Written()
	if logOn(c.log, slog.LevelInfo) {
		c.log.Info("mtcp: session handed over", "to", successor, "epoch", epoch,
			"checkpoint", rec.Seq, "in", rec.InPos, "out", rec.OutPos, "settled", settled)
	}
	c.terminateLocked(&SessionMovedError{SessionID: c.idStr, To: successor})
	return nil
}

// fenced ends a session that another member took over at a newer epoch.
func (c *Conn) fenced(epoch uint64, by string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.server == nil || c.server.epoch >= epoch {
		return
	}
	c.log.Warn("mtcp: session fenced: another member took it over", "by", by, "epoch", epoch, "ours", c.server.epoch)
	c.terminateLocked(&SessionMovedError{SessionID: c.idStr, To: by})
}

// poolRefusal turns the pool runtime's refusal into the listener's.
func poolRefusal(err error) error {
	var r *pool.Refused
	if errors.As(err, &r) {
		return &refusal{r.Frame}
	}
	return err
}
