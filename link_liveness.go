package mtcp

import (
	"time"

	"github.com/migratory/mtcp/internal/stream"
)

// Liveness. A link is busy while it awaits the peer: bytes or an end of
// stream it sent are not yet acknowledged, bytes wait for the peer's window
// to open, the application closed the session and waits for the peer's
// end, or a PING it sent is not yet answered by anything. A busy link pings
// after KeepAlive without hearing from the peer and is dead after KeepAliveTimeout without hearing from it
// (counted from when it began to await, if later). An idle link sends a
// PING only after IdleProbe of quiet: that PING makes it busy, so a path
// that died while the session was idle is found dead within IdleProbe +
// KeepAliveTimeout, one that dies while data is outstanding within
// KeepAliveTimeout. Each link's check runs on the shared timerSet of its
// listener (or of the clients), only as often as its state needs.

// busyLocked (c.mu held) reports whether the link awaits the peer.
func (l *link) busyLocked() bool {
	c := l.c
	return c.st.AwaitsPeer() || (c.closed && c.st.PeerEnd() == stream.Open) ||
		l.lastPing > time.Duration(l.lastRecv.Load())
}

// checkSoon (c.mu held) makes the link's check run within half a keepalive
// interval: acknowledgements to send, a read token to take up, or output
// that may have made the link busy (its check then starts counting).
func (l *link) checkSoon() {
	l.check.scheduleWithin(l.c.params.keepAlive / 2)
}

// watch is the link's keepalive check: it declares a busy link dead when
// it heard nothing for the timeout, asks for a PING when the link has been
// quiet long enough, sends acknowledgements too small to have gone on
// their own, lets the background reader take a read token nobody holds,
// and schedules itself again.
func (l *link) watch() {
	select {
	case <-l.dead:
		return
	default:
	}
	c := l.c
	p := c.params
	now := time.Since(l.born)
	heard := time.Duration(l.lastRecv.Load())
	kick := false
	c.mu.Lock()
	busy := l.busyLocked()
	if busy && !l.wasBusy {
		l.busySince = now // began to await since the last check
	}
	l.wasBusy = busy
	if busy && now-max(heard, l.busySince) >= p.keepAliveTimeout {
		c.mu.Unlock()
		l.fail(errKeepAliveTimeout)
		return
	}
	quietFor := p.idleProbe
	if busy {
		quietFor = p.keepAlive
	}
	if now-heard >= quietFor && now-l.lastPing >= p.keepAlive {
		if !busy {
			l.busySince, l.wasBusy = now, true
		}
		l.pingDue, l.lastPing = true, now
		busy, kick = true, true
	}
	_, dirty := c.st.AckDue()
	kick = kick || dirty // progress too small to have been sent on its own
	if c.holder == holderNone {
		c.wakeReaderLocked() // nobody reads: let the background reader
	}
	next := p.idleProbe - (now - heard)
	if busy || dirty || c.holder == holderNone {
		next = p.keepAlive / 2
	}
	// Scheduled under c.mu (the timer set's mu is a leaf): a Write that
	// makes the link busy after this check judged it idle calls checkSoon
	// under c.mu too, so it runs after this schedule and brings the check
	// forward, rather than being pushed back to the idle probe's time.
	l.check.schedule(max(next, minKeepAlive))
	c.mu.Unlock()
	if kick {
		l.kickNow()
	}
	if isClosed(l.dead) {
		l.check.stop() // shut down meanwhile: let the link go now
	}
}

// setReadDeadlineLocked (c.mu held) sets nc's read deadline unless it is
// set to t already.
func (l *link) setReadDeadlineLocked(t time.Time) {
	if t.Equal(l.readDeadline) {
		return
	}
	l.readDeadline = t
	_ = l.nc.SetReadDeadline(t)
}
