package stream

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRingAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRing(100_000)
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
			a, b := r.peek(r.start+uint64(from), r.start+uint64(to))
			require.Equal(t, model[from:to], append(append([]byte{}, a...), b...))
			d := rng.IntN(len(model) + 1)
			r.discard(r.start + uint64(d))
			model = model[d:]
		}
		require.Equal(t, len(model), r.n)
		require.LessOrEqual(t, len(r.buf), 100_000)
	}
}

func TestRingReserveSurvivesConcurrentDrain(t *testing.T) {
	r := newRing(64)
	r.write([]byte("abc"))
	a, b := r.reserve(4)
	r.read(make([]byte, 3)) // the reader drains while the reservation is filled
	copy(b, []byte("wxyz")[copy(a, "wxyz"):])
	r.commit(4)
	p := make([]byte, 8)
	require.Equal(t, 4, r.read(p))
	require.Equal(t, "wxyz", string(p[:4]))
}
