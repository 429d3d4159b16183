package pool

import (
	"testing"

	"github.com/stretchr/testify/require"
)

type sized struct {
	n    int
	gone bool
}

func (s *sized) gaveUp() bool { return s.gone }
func (s *sized) size() int    { return s.n }

// A request larger than a batch's byte bound still goes, alone, rather
// than waiting in its queue until its caller gives up; those that gave up
// are left out, and the bounds of count and bytes cut the batches.
func TestBatcherTakesTheOldestHoweverLarge(t *testing.T) {
	var b batcher[string, *sized]
	big, small := &sized{n: 100}, &sized{n: 10}
	q, start := b.add("m1", &sized{n: 1, gone: true})
	require.True(t, start)
	b.add("m1", big)
	b.add("m1", small)
	b.add("m1", &sized{n: 10})
	b.add("m1", &sized{n: 10})

	require.Equal(t, []*sized{big}, b.next(q, 8, 50), "the oldest that waits goes alone")
	require.Equal(t, []*sized{small}, b.next(q, 1, 50), "at most most of them")
	require.Len(t, b.next(q, 8, 15), 1, "at most bytes of them, after the first")
	require.Len(t, b.next(q, 8, 15), 1)
	require.Nil(t, b.next(q, 8, 15), "none waits: the sender ends")
}
