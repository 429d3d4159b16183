package pool

import "time"

// Copy rounds run by the thousand a second while sessions checkpoint or
// arrive, each on a goroutine: a fresh goroutine grew its stack for every
// round (encoding a checkpoint goes deep), 6% of a member's CPU. A round
// goes to a goroutine that finished one and waits for more, with the
// stack it grew, if there is one; else to a new goroutine, which then
// waits for more for a while. As many run at once as before.

// warmIdle is how long a goroutine that ran a copy round waits for another.
const warmIdle = time.Second

// warm hands work to waiting goroutines.
type warm struct {
	tasks chan func() // unbuffered: a send succeeds only to a waiting goroutine
	stop  <-chan struct{}
}

func newWarm(stop <-chan struct{}) *warm { return &warm{tasks: make(chan func()), stop: stop} }

// run runs f on a waiting goroutine, or a new one.
func (w *warm) run(f func()) {
	select {
	case w.tasks <- f:
	default:
		go w.loop(f)
	}
}

func (w *warm) loop(f func()) {
	idle := time.NewTimer(warmIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(warmIdle)
		select {
		case f = <-w.tasks:
		case <-idle.C:
			return
		case <-w.stop:
			return
		}
	}
}
