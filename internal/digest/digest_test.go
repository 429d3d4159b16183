package digest

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBetweenMatchesDirectDigest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for i := 0; i < 300; i++ {
		x := rng.IntN(len(data))
		r := x + rng.IntN(len(data)-x+1)
		if i%10 == 0 {
			r = x // empty range
		}
		var from, to Running
		from.Write(data[:x])
		to.Write(data[:r])
		require.Equal(t, Of(data[x:r]), Between(from, to), "range [%d, %d)", x, r)
	}
}

func TestRunningMatchesWhole(t *testing.T) {
	var r Running
	r.Write([]byte("hello "))
	r.Write([]byte("world"))
	require.Equal(t, Of([]byte("hello world")), r.CRC)
	require.Equal(t, uint64(11), r.Pos)
}

func TestBetweenDetectsChange(t *testing.T) {
	a := []byte("the quick brown fox jumps over the lazy dog")
	var from, to Running
	from.Write(a[:10])
	to.Write(a)
	b := append([]byte{}, a[10:]...)
	b[5] ^= 1
	require.NotEqual(t, Of(b), Between(from, to))
}

func BenchmarkRunning(b *testing.B) {
	p := make([]byte, 64<<10)
	var r Running
	b.SetBytes(int64(len(p)))
	for i := 0; i < b.N; i++ {
		r.Write(p)
	}
}
