package mtcp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/pool"
)

// ErrDrainIncomplete: Drain's context ended with sessions still on the member.
var ErrDrainIncomplete = errors.New("mtcp: drain incomplete")

// drainRetry is how long a session asked to move may take before it is
// asked again (to another member).
const drainRetry = 2 * time.Second

// Drain moves every session to other members of the pool, then closes the
// listener. The member announces that it is draining, so it gets no new
// sessions: new clients are redirected to another member. Sessions that
// cannot move (their application never checkpointed) are waited for until
// they end. The member then waits (at most twice the handshake timeout)
// for the members that took sessions to confirm them. If ctx ends first, Drain closes the listener anyway and returns
// an error wrapping ErrDrainIncomplete that says how many sessions remained.
// On a standalone listener Drain stops accepting and waits for the sessions
// to end.
func (ln *Listener) Drain(ctx context.Context) error {
	start := time.Now()
	ln.draining.Store(true)
	if n := ln.node; n != nil {
		if err := n.pool.SetDraining(true); err != nil {
			ln.log.Warn("mtcp: announcing drain", "err", err)
		}
	}
	ln.log.Info("mtcp: draining", "sessions", ln.Sessions())
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	asked := make(map[*Conn]time.Time)
	next := 0
	for {
		sessions := ln.sessionList()
		// The members that took sessions confirm it; until then a lost
		// answer can be asked for again, so the member stays.
		if len(sessions) == 0 && (ln.node == nil || ln.node.unsettled() == 0) {
			ln.log.Info("mtcp: drained", "took", time.Since(start))
			return ln.Close()
		}
		if n := ln.node; n != nil {
			targets := n.drainTargets()
			for _, c := range sessions {
				if at, ok := asked[c]; (ok && time.Since(at) < drainRetry) || len(targets) == 0 {
					continue
				}
				t := targets[next%len(targets)]
				if c.requestMove(wire.Move{Reason: wire.MoveDrain, Name: t.Name, Addr: t.ClientAddr}) {
					asked[c] = time.Now()
					next++
				}
			}
			for c := range asked {
				if c.isTerminated() {
					delete(asked, c)
				}
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			left := ln.Sessions()
			_ = ln.Close()
			return fmt.Errorf("%w: %d sessions remain after %v: %w", ErrDrainIncomplete, left, time.Since(start).Round(time.Millisecond), ctx.Err())
		}
	}
}

// drainTargets lists the members that can take sessions.
func (n *node) drainTargets() []pool.Member { return n.pool.Eligible(n.name) }

// requestMove asks the client to move, if the session can; it reports
// whether it asked.
func (c *Conn) requestMove(m wire.Move) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.server
	if c.terminated || !s.movableLocked(c) {
		return false
	}
	s.askMoveLocked(c, m)
	return true
}

// askMoveLocked asks the client to move: one MOVE goes out, on the current
// link or the next one.
func (s *serverSide) askMoveLocked(c *Conn, m wire.Move) {
	s.moveTo, s.moveSent = &m, false
	if c.link != nil {
		c.link.kickNow()
	}
}

func (c *Conn) isTerminated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.terminated
}
