package stream

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRingAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRing(100_000, nil, false)
	var model []byte // bytes held, starting at r.start
	var next byte
	for i := 0; i < 20_000; i++ {
		switch rng.IntN(4) {
		case 0, 1: // write
			p := make([]byte, rng.IntN(30_000))
			for j := range p {
				p[j] = next
				next++
			}
			k := r.write(p)
			require.Equal(t, min(len(p), 100_000-len(model)), k)
			model = append(model, p[:k]...)
		case 2: // read
			p := make([]byte, rng.IntN(30_000))
			k := r.read(p)
			require.Equal(t, min(len(p), len(model)), k)
			require.True(t, bytes.Equal(model[:k], p[:k]))
			model = model[k:]
		case 3: // peek a random range, then discard a prefix
			if len(model) == 0 {
				continue
			}
			from := rng.IntN(len(model))
			to := from + rng.IntN(len(model)-from+1)
			got := bytes.Join(r.pieces(nil, r.start+uint64(from), r.start+uint64(to)), nil)
			require.Equal(t, model[from:to], got)
			d := rng.IntN(len(model) + 1)
			r.discard(r.start + uint64(d))
			model = model[d:]
		}
		require.Equal(t, len(model), r.n)
		require.LessOrEqual(t, r.held(), 100_000+2*ChunkSize)
		if r.n == 0 {
			require.Zero(t, r.held(), "an empty ring holds no memory")
		}
	}
}

func TestRingReserveSurvivesConcurrentDrain(t *testing.T) {
	r := newRing(64, nil, true)
	r.write([]byte("abc"))
	a, b := r.reserve(4)
	r.read(make([]byte, 3)) // the reader drains while the reservation is filled
	copy(b, []byte("wxyz")[copy(a, "wxyz"):])
	r.commit(4)
	p := make([]byte, 8)
	require.Equal(t, 4, r.read(p))
	require.Equal(t, "wxyz", string(p[:4]))
}

// budget is a Memory with a limit, for tests.
type budget struct{ used, limit int }

func (b *budget) Take(n int, must bool) bool {
	if !must && b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}
func (b *budget) Give(n int) { b.used -= n }

func TestRingDrawsOnItsBudget(t *testing.T) {
	b := &budget{limit: 2 * ChunkSize}
	r := newRing(10*ChunkSize, b, false)
	require.Equal(t, 2*ChunkSize, r.write(make([]byte, 3*ChunkSize)), "output stops where the budget does")
	require.Equal(t, 2*ChunkSize, b.used)
	r.discard(r.start + ChunkSize)
	require.Equal(t, ChunkSize, b.used, "an emptied chunk goes back at once")
	require.Equal(t, ChunkSize, r.write(make([]byte, 3*ChunkSize)))
	r.discard(r.end())
	require.Zero(t, b.used, "an empty ring holds nothing")
	require.Zero(t, r.held())

	in := newRing(10*ChunkSize, b, true)
	a, c := in.reserve(3 * ChunkSize)
	require.Equal(t, 2*ChunkSize, len(a)+len(c), "input is taken whatever the budget, two chunks at a time")
	require.Equal(t, 3*ChunkSize, b.used)
	in.commit(len(a) + len(c))
	in.read(make([]byte, 4*ChunkSize))
	require.Zero(t, b.used)
}

func TestStreamWriteWaitsForMemory(t *testing.T) {
	b := &budget{limit: ChunkSize}
	s := New(Config{Window: 1 << 20, Retention: 1 << 20, Memory: b}, 1<<20)
	n, err := s.Write(make([]byte, 3*ChunkSize))
	require.Equal(t, ChunkSize, n)
	require.ErrorIs(t, err, ErrNoMemory)
	s2 := New(Config{Window: 1 << 20, Retention: ChunkSize / 2}, 1<<20)
	n, err = s2.Write(make([]byte, ChunkSize))
	require.Equal(t, ChunkSize/2, n)
	require.NoError(t, err, "a full retention is not a want of memory")
}

// TestRingSmallWritesAllocateNothing: a ring that empties after every small
// write (a request answered and acknowledged) allocates nothing per write,
// and holds no memory while empty.
func TestRingSmallWritesAllocateNothing(t *testing.T) {
	r := newRing(1<<20, nil, false)
	p := make([]byte, 64)
	cycle := func() {
		r.write(p)
		r.discard(r.end())
	}
	cycle() // the first write makes the list of chunks
	allocs := testing.AllocsPerRun(1000, cycle)
	require.Zero(t, allocs, "allocations per write and discard")
	require.Zero(t, r.held(), "an empty ring holds no chunk")
}
