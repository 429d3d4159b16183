// Package parallel runs the iterations of a loop on a bounded number of
// goroutines: the scale tests and mtcp-scale open, stream and close
// thousands of sessions this way.
package parallel

import (
	"context"
	"sync"
	"sync/atomic"
)

// ForEach runs f(i) for every i in [0, n) on at most workers goroutines
// (at least one) and returns the first error. After an error, or once ctx
// ends (its error is then returned), no further i is handed out; the
// calls under way finish before ForEach returns.
func ForEach(ctx context.Context, n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	stop := make(chan struct{})
	for range max(min(workers, n), 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				select {
				case <-stop:
					return
				default:
				}
				err := ctx.Err()
				if err == nil {
					err = f(i)
				}
				if err != nil {
					once.Do(func() { first = err; close(stop) })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
