package mtcp

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTimerSetOrder: entries fire in the order they are due, a stopped
// entry never fires, scheduleWithin only brings an entry forward, and an
// entry scheduled again fires once, at its new time.
func TestTimerSetOrder(t *testing.T) {
	s := newTimerSet()
	var mu sync.Mutex
	var fired []int
	done := make(chan struct{})
	entry := func(i int) *timerEntry {
		return s.entry(func() {
			mu.Lock()
			fired = append(fired, i)
			n := len(fired)
			mu.Unlock()
			if n == 4 {
				close(done)
			}
		})
	}
	const unit = 20 * time.Millisecond
	e := make([]*timerEntry, 6)
	for i := range e {
		e[i] = entry(i)
	}
	e[0].schedule(5 * unit)
	e[1].schedule(1 * unit)
	e[2].schedule(3 * unit)
	e[3].schedule(2 * unit)
	e[4].schedule(4 * unit)
	e[4].stop()                   // never fires
	e[0].scheduleWithin(4 * unit) // brought forward, before 4's old time
	e[2].scheduleWithin(9 * unit) // already sooner: unchanged
	e[3].schedule(6 * unit)       // moved later: fires once, last
	e[5].schedule(time.Hour)      // not due within the test
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the entries did not fire")
	}
	time.Sleep(2 * unit)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int{1, 2, 0, 3}, fired)
	e[5].stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Zero(t, s.h.Len(), "nothing is left scheduled")
}

// TestTimerSetWithinKeepsSoonerEntry: scheduleWithin leaves an entry that is
// due within the asked lead where it is, and brings forward one that is due
// later.
func TestTimerSetWithinKeepsSoonerEntry(t *testing.T) {
	s := newTimerSet()
	e := s.entry(func() {})
	defer e.stop()
	e.schedule(time.Hour)
	at := e.at.Load()
	e.scheduleWithin(2 * time.Hour)
	require.Equal(t, at, e.at.Load(), "due within the lead already: unchanged")
	e.scheduleWithin(time.Minute)
	sooner := e.at.Load()
	require.Less(t, sooner, at, "brought forward")
	e.scheduleWithin(time.Hour)
	require.Equal(t, sooner, e.at.Load(), "a longer lead never moves it later")
}
