package ctlflood

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFloodReopensDroppedConnections: a server that drops every connection
// at once sees the flood open them again, and every kind sends what it
// should before it is dropped.
func TestFloodReopensDroppedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hello := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	var mu sync.Mutex
	got := map[int]int{} // bytes read before the drop -> connections
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer nc.Close()
				_ = nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				n := 0
				buf := make([]byte, 128)
				for {
					k, err := nc.Read(buf)
					n += k
					if err != nil {
						break
					}
				}
				mu.Lock()
				got[n]++
				mu.Unlock()
			})
		}
	})
	f := Start(Config{Addr: ln.Addr().String(), Conns: 4, Kinds: []Kind{Silent, PartHello, Hello, HalfProof},
		Reconnect: 20 * time.Millisecond, Hello: func() []byte { return hello }, HalfProof: 4})
	require.Eventually(t, func() bool { return f.Dropped.Load() >= 8 }, 10*time.Second, 10*time.Millisecond)
	f.Stop()
	require.NoError(t, ln.Close())
	wg.Wait()
	require.GreaterOrEqual(t, f.Opened.Load(), f.Dropped.Load())
	for _, n := range []int{0, 20, len(hello), len(hello) + 4} {
		require.Positive(t, got[n], "connections that sent %d bytes (%v)", n, got)
	}
}
