package pool

import (
	"sync"
	"time"
)

// every calls f every d until stop is closed, then marks wg done.
func every(wg *sync.WaitGroup, stop <-chan struct{}, d time.Duration, f func()) {
	defer wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f()
		}
	}
}
