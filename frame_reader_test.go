package mtcp

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFrameReaderKeepsOrder reads a stream written in pieces of random
// sizes with random Peeks, Discards and Reads, through the quiet array and
// pooled buffers alike: every byte comes out once, in order, and the reader
// holds no buffer once all is consumed; it reports hearing from the peer
// once for each read that got bytes off the connection.
func TestFrameReaderKeepsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([]byte, 4<<20)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	a, b := net.Pipe()
	defer b.Close()
	go func() {
		defer a.Close()
		w := rand.New(rand.NewPCG(3, 4))
		for rest := src; len(rest) > 0; {
			k := min(len(rest), 1+w.IntN([]int{16, 300, 70 << 10}[w.IntN(3)]))
			if _, err := a.Write(rest[:k]); err != nil {
				return
			}
			rest = rest[k:]
		}
	}()
	cb := &readCountingConn{Conn: b}
	var f frameReader
	f.init(cb, nil)
	heard := 0
	f.heard = func() { heard++ }
	var got []byte
	for len(got) < len(src) {
		left := len(src) - len(got)
		switch rng.IntN(3) {
		case 0:
			n := min(left, 1+rng.IntN(readBufferSize))
			p, err := f.Peek(n)
			require.NoError(t, err)
			got = append(got, p...)
			k, err := f.Discard(n)
			require.NoError(t, err)
			require.Equal(t, n, k)
		case 1:
			n := min(left, 1+rng.IntN(100<<10))
			p := make([]byte, n)
			k, err := f.Read(p)
			require.NoError(t, err)
			got = append(got, p[:k]...)
		case 2:
			n := min(left, 1+rng.IntN(2000))
			k, err := f.Discard(n)
			require.NoError(t, err)
			got = append(got, src[len(got):len(got)+k]...)
		}
		require.True(t, bytes.Equal(src[:len(got)], got), "bytes out of order after %d", len(got))
	}
	require.Zero(t, f.Buffered())
	require.Nil(t, f.buf, "no buffer is held once every byte is consumed")
	_, err := f.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
	require.Positive(t, cb.reads)
	require.Equal(t, cb.reads, heard, "heard once per read that got bytes")
}

// readCountingConn counts the reads that got bytes.
type readCountingConn struct {
	net.Conn
	reads int
}

func (c *readCountingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads++
	}
	return n, err
}
