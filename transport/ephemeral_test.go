package transport

import (
	"bufio"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHelloFloodKeyGenerations: hellos from a peer without the key cost the
// server at most one X25519 key generation per keyReuse, and the server
// lets its key go keyReuse after making it.
func TestHelloFloodKeyGenerations(t *testing.T) {
	s, _ := startServer(t, nil)
	addr := s.Addr().String()
	const n = 200
	pubs := map[[pubLen]byte]bool{}
	start := time.Now()
	for range n {
		c := rawDial(t, addr)
		_, err := c.Write(testHello(MinMessage))
		require.NoError(t, err)
		h, _, err := readHello(bufio.NewReader(c))
		require.NoError(t, err)
		pubs[h.Pub] = true
		_ = c.Close()
	}
	elapsed := time.Since(start)
	t.Logf("%d hellos in %v: %d server keys", n, elapsed, len(pubs))
	require.LessOrEqual(t, len(pubs), 1+int(elapsed/keyReuse), "at most one key per keyReuse")

	require.Eventually(t, func() bool {
		s.keys.mu.Lock()
		defer s.keys.mu.Unlock()
		return s.keys.key == nil
	}, time.Second, 5*time.Millisecond, "the key is let go")
}
