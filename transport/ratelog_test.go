package transport

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBadPeerWarningsRateLimited: a flood of garbage costs at most one
// warning per second in the log; the rest go to debug level.
func TestBadPeerWarningsRateLimited(t *testing.T) {
	var log logBuffer
	s, _ := startServer(t, func(cfg *Config) { cfg.Logger = log.logger() })
	addr := s.Addr().String()
	const n = 50
	for range n {
		c := rawDial(t, addr)
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		expectDropped(t, c, 2*time.Second)
	}
	require.Eventually(t, func() bool { return strings.Count(log.String(), "bad magic") == n },
		2*time.Second, 10*time.Millisecond)
	warns := strings.Count(log.String(), "level=WARN")
	require.GreaterOrEqual(t, warns, 1)
	require.LessOrEqual(t, warns, 3, "at most one warning per second:\n%s", log.String())
}
