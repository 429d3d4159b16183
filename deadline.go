package mtcp

import (
	"sync"
	"sync/atomic"
	"time"
)

// deadline is a settable point in time that closes a channel when it
// passes, in the manner of net/pipe.go: setting it again re-arms it, and a
// time in the past closes the channel at once. Its zero value has no
// deadline and no channel (wait returns nil, which never closes): a
// session that never sets one allocates nothing for it.
type deadline struct {
	armed  atomic.Bool  // a deadline is set (for lock-free checks)
	cur    atomic.Value // cancel, for wait without the lock
	mu     sync.Mutex
	timer  *time.Timer
	at     time.Time
	cancel chan struct{} // closed when the deadline passes; nil until one is first set
}

// renew (mu held) gives the deadline a new, open channel.
func (d *deadline) renew() {
	d.cancel = make(chan struct{})
	d.cur.Store(d.cancel)
}

// set arms the deadline at t; the zero time disarms it. It reports whether
// it made the deadline's first channel: a Read or Write waiting since before
// holds none (wait gave it nil), and must be woken to look again.
func (d *deadline) set(t time.Time) (first bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for its close to be visible
	}
	d.timer = nil
	d.at = t
	d.armed.Store(!t.IsZero())
	if d.cancel == nil {
		if t.IsZero() {
			return false // never set: nothing to disarm
		}
		d.renew()
		first = true
	}
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.renew()
		}
		return first
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.renew()
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return first
	}
	if !closed {
		close(d.cancel)
	}
	return first
}

// wait returns a channel closed when the deadline passes, or nil (never
// ready) if no deadline was ever set. It takes no lock: Read and Write call
// it each time.
func (d *deadline) wait() chan struct{} {
	ch, _ := d.cur.Load().(chan struct{}) // nil before the first set
	return ch
}

// get returns the deadline's time (zero if none).
func (d *deadline) get() time.Time {
	if !d.armed.Load() {
		return time.Time{} // the common case, without the lock
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at
}

// isSet reports whether a deadline is armed or passed.
func (d *deadline) isSet() bool { return d.armed.Load() }

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
