package parallel

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package's run if any goroutine outlives its tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestForEachRunsEachOnce: every i is run once, on no more goroutines at
// once than asked for.
func TestForEachRunsEachOnce(t *testing.T) {
	const n, workers = 1000, 4
	var mu sync.Mutex
	seen := make([]int, n)
	var now, most atomic.Int64
	require.NoError(t, ForEach(context.Background(), n, workers, func(i int) error {
		c := now.Add(1)
		defer now.Add(-1)
		for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
		}
		mu.Lock()
		seen[i]++
		mu.Unlock()
		return nil
	}))
	for i, k := range seen {
		require.Equal(t, 1, k, "i=%d", i)
	}
	require.LessOrEqual(t, most.Load(), int64(workers))
	require.NoError(t, ForEach(context.Background(), 0, workers, func(int) error { panic("no i") }))
}

// TestForEachStopsAtFirstError: the first error is returned and no i is
// handed out after it.
func TestForEachStopsAtFirstError(t *testing.T) {
	boom := errors.New("boom")
	var ran atomic.Int64
	err := ForEach(context.Background(), 1000, 1, func(i int) error {
		ran.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
	require.EqualValues(t, 11, ran.Load())
}

// TestForEachStopsWhenContextEnds: once ctx ends, no i is handed out and
// its error is returned.
func TestForEachStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Int64
	err := ForEach(ctx, 1000, 1, func(i int) error {
		ran.Add(1)
		if i == 4 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.EqualValues(t, 5, ran.Load())
}
