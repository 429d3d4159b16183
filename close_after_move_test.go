package mtcp

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCloseWhereNoCopyCanBeMade: a pool of two members, one drains; the
// session moves to the other, which is left with no member to hold copies
// of its checkpoints, so none of them becomes durable. The session still
// closes at once and cleanly: once the client has closed and the
// application read all of its input, nothing is left to restore, and the
// client's last bytes are released without a durable checkpoint.
func TestCloseWhereNoCopyCanBeMade(t *testing.T) {
	tp := startPool(t, 2, func(c *Config) { c.Replicas = 1 })
	defer tp.close()
	mc := tp.dial(t, nil, "m0")
	_, err := mc.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(mc, buf)
	require.NoError(t, err)
	require.NoError(t, tp.member("m0").Drain(ctxTimeout(t, 10*time.Second)))
	require.Equal(t, "m1", mc.MemberName())
	_, err = mc.Write([]byte("pong"))
	require.NoError(t, err)
	_, err = io.ReadFull(mc, buf)
	require.NoError(t, err)
	require.Equal(t, "pong", string(buf))

	start := time.Now()
	require.NoError(t, mc.Close())
	waitSessionEnd(t, mc)
	require.NoError(t, mc.Err(), "the session finished cleanly")
	t.Logf("ended %v after Close", time.Since(start))
}
