package mtcp

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFailoverAfterCrash: the member serving a stateful session crashes in
// the middle of an echo; the client resumes on another member, which
// restores the session from the replicated checkpoint; nothing is lost.
func TestFailoverAfterCrash(t *testing.T) {
	tp := startPool(t, 3, func(c *Config) { c.Replicas = 1 })
	defer tp.close()
	mc := tp.dial(t, nil, "m0")
	c := net.Conn(mc)

	const n = 12 << 20
	var crashed atomic.Bool
	var crashAt time.Time
	res := echoTransfer(c, n, 31, func(got int64) {
		if got >= n/3 && !crashed.Swap(true) {
			crashAt = time.Now()
			tp.member("m0").crash()
		}
	})
	requireTransferOK(t, res, n, 31, tp.closeSession(t, c))
	require.NotEqual(t, "m0", mc.MemberName())
	served := tp.apps.servedBy(mc.SessionID())
	require.Equal(t, "m0", served[0])
	require.Len(t, served, 2)
	for _, err := range tp.apps.errors() {
		require.True(t, errors.Is(err, ErrSessionLost), "only the crashed member's application fails: %v", err)
	}
	t.Logf("crash at %v; served by %v", crashAt.Format("15:04:05.000"), served)
}
