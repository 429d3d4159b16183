package mtcp

import "time"

// Metrics receives the events of a Listener's or a Dialer's sessions, for
// counters and histograms (package prom adapts it to Prometheus). Gauges
// (sessions held, bytes retained) are read from Listener.Status when
// needed. Implementations must be safe for concurrent use and quick: they
// are called on the sessions' own goroutines.
type Metrics interface {
	// SessionOpened counts a new session.
	SessionOpened()
	// SessionEnded counts a session that ended: lost is true if it ended
	// with an error (not closed, not moved to another member).
	SessionEnded(lost bool)
	// Resumed counts a session resumed on a new link of the same server,
	// after the pause (from the link's loss to the resume).
	Resumed(pause time.Duration)
	// Moved counts a move by handover, after its pause (client side: from
	// when the session left its link, or lost it, to the session running on
	// the new member, which leaves out the dial the move made while the
	// stream went on; server side: the handover).
	Moved(pause time.Duration)
	// FailedOver counts a session taken over from the replicas of a member
	// that was gone, after the pause the client saw or the takeover took.
	FailedOver(pause time.Duration)
}

// noMetrics is the Metrics of a Listener or Dialer without one.
type noMetrics struct{}

func (noMetrics) SessionOpened()           {}
func (noMetrics) SessionEnded(bool)        {}
func (noMetrics) Resumed(time.Duration)    {}
func (noMetrics) Moved(time.Duration)      {}
func (noMetrics) FailedOver(time.Duration) {}
