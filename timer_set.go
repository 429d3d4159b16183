package mtcp

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"
)

// timerSet runs the checks of many links on one runtime timer: a heap of
// entries ordered by when they are due, and a timer set for the earliest.
// Links schedule their next check here instead of owning a timer each, so
// that thousands of idle sessions cost one timer, not thousands.
type timerSet struct {
	base time.Time // entries' times are nanoseconds after base

	mu    sync.Mutex
	h     timerHeap
	timer *time.Timer
	armed int64 // when timer fires (0: not armed)
}

// timerEntry is one scheduled callback of a timerSet. Its callback runs on
// the set's timer goroutine, so it must not block for long.
type timerEntry struct {
	set *timerSet
	fn  func()
	at  atomic.Int64 // when it is due (0: not scheduled); written under set.mu
	// lead is how long after it was scheduled at is; written under set.mu.
	// An entry scheduled with a lead of at most d is due within d from
	// any later moment, which scheduleWithin can tell without the clock.
	lead atomic.Int64
	idx  int // position in the heap (-1: not in it); guarded by set.mu
}

func newTimerSet() *timerSet { return &timerSet{base: time.Now()} }

// clientTimers runs the checks of client links: one set for the process,
// since a Dialer is a plain value that may be copied.
var clientTimers = newTimerSet()

// now is the set's clock: nanoseconds after base, never 0.
func (s *timerSet) now() int64 { return int64(time.Since(s.base)) + 1 }

func (s *timerSet) entry(fn func()) *timerEntry {
	return &timerEntry{set: s, fn: fn, idx: -1}
}

// schedule makes e due after d from now, replacing when it was due.
func (e *timerEntry) schedule(d time.Duration) {
	s := e.set
	at := s.now() + int64(d)
	s.mu.Lock()
	e.dueAtLocked(at, d)
	s.mu.Unlock()
}

// dueAtLocked makes e due at at, in the set's clock, lead after now; the
// set's mu is held.
func (e *timerEntry) dueAtLocked(at int64, lead time.Duration) {
	s := e.set
	e.lead.Store(int64(lead))
	e.at.Store(at)
	if e.idx >= 0 {
		heap.Fix(&s.h, e.idx)
	} else {
		heap.Push(&s.h, e)
	}
	s.armLocked()
}

// scheduleWithin makes e due after at most d from now: it changes nothing
// when e is due sooner already (a check without a lock, so that the data
// path can call it often; while e is scheduled with a lead of at most d,
// not even a look at the clock).
func (e *timerEntry) scheduleWithin(d time.Duration) {
	if e.at.Load() != 0 && e.lead.Load() <= int64(d) {
		return
	}
	s := e.set
	at := s.now() + int64(d)
	if cur := e.at.Load(); cur != 0 && cur <= at {
		return
	}
	s.mu.Lock()
	if cur := e.at.Load(); cur == 0 || cur > at {
		e.dueAtLocked(at, d)
	}
	s.mu.Unlock()
}

// stop unschedules e.
func (e *timerEntry) stop() {
	s := e.set
	s.mu.Lock()
	if e.idx >= 0 {
		heap.Remove(&s.h, e.idx)
	}
	e.at.Store(0)
	s.mu.Unlock()
}

// armLocked sets the runtime timer for the earliest entry.
func (s *timerSet) armLocked() {
	if len(s.h) == 0 {
		return // a timer still armed finds nothing due and stays off
	}
	first := s.h[0].at.Load()
	if s.armed != 0 && s.armed <= first {
		return
	}
	s.armed = first
	d := time.Duration(first - s.now())
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.fire)
		return
	}
	s.timer.Reset(d)
}

// fire runs the entries that are due, then arms the timer for the next.
func (s *timerSet) fire() {
	var due []*timerEntry
	s.mu.Lock()
	s.armed = 0
	now := s.now()
	for len(s.h) > 0 && s.h[0].at.Load() <= now {
		e := heap.Pop(&s.h).(*timerEntry)
		e.at.Store(0)
		due = append(due, e)
	}
	s.armLocked()
	s.mu.Unlock()
	for _, e := range due {
		e.fn()
	}
}

// timerHeap orders entries by when they are due (container/heap).
type timerHeap []*timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Load() < h[j].at.Load() }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}

func (h *timerHeap) Push(x any) {
	e := x.(*timerEntry)
	e.idx = len(*h)
	*h = append(*h, e)
}

func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}
