package mtcp

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// A session in a pool with replicas is crash-safe when a crash of its
// member loses nothing: a checkpoint with all Config.Replicas copies
// confirmed covers every input byte its client has freed. A checkpoint
// counts as durable only then, and until one is, the client keeps its
// input (backpressure, up to three quarters of its retention). A session
// whose checkpoints cannot get their copies (too few members, or members
// that refuse them) or whose client's retention filled up is at risk: its
// Status, the listener's Status (and the prom gauge) and a warning say so,
// and a crash of its member would lose it.

// crashSafeLocked reports whether a crash of the member would lose nothing
// of the session.
func (s *serverSide) crashSafeLocked(c *Conn) bool {
	return s.member != nil && s.member.Replicas() > 0 && s.durable != nil && c.st.Release() <= s.durable.InPos
}

// atRiskLocked reports whether a session that checkpoints is not crash-safe
// for a reason other than its youth: its copies cannot be had, or its
// client freed input no durable checkpoint covers.
func (s *serverSide) atRiskLocked(c *Conn) bool {
	if s.member == nil || s.member.Replicas() == 0 || !s.explicit || c.ended {
		return false
	}
	if s.crashSafeLocked(c) {
		s.released = false
		return false
	}
	return s.copiesFailing() || s.released
}

// noteRiskLocked tells the session's member and the logs when the session
// becomes at risk, or safe again.
func (c *Conn) noteRiskLocked() {
	s := c.server
	if s == nil || s.member == nil {
		return
	}
	risk := s.atRiskLocked(c)
	if risk == s.atRisk {
		return
	}
	s.atRisk = risk
	ln := s.ln
	if !risk {
		ln.atRisk.Add(-1)
		if logOn(c.log, slog.LevelInfo) {
			c.log.Info("mtcp: session is crash-safe again")
		}
		return
	}
	k := ln.atRisk.Add(1)
	why := "the client's retention filled up before a checkpoint got its copies"
	if s.copiesFailing() {
		why = "its checkpoints cannot get their copies on other members"
	}
	if ln.riskWarn.allow() {
		c.log.Warn("mtcp: session is not crash-safe: a crash of this member would lose it",
			"why", why, "replicas", s.member.Replicas(), "sessions at risk", k)
	} else if logOn(c.log, slog.LevelDebug) {
		c.log.Debug("mtcp: session is not crash-safe", "why", why)
	}
}

// logLimit lets a warning through at most once per interval.
type logLimit struct {
	every time.Duration
	last  atomic.Int64 // unix nanoseconds of the last warning
}

func (l *logLimit) allow() bool {
	now := time.Now().UnixNano()
	last := l.last.Load()
	return now-last >= int64(l.every) && l.last.CompareAndSwap(last, now)
}
