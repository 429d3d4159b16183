package mtcp

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/migratory/mtcp/internal/faultproxy"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestEchoSurvivesResets echoes 24 MiB both ways through a proxy that resets
// the connection after every 768 KiB echoed.
func TestEchoSurvivesResets(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	srv := startEchoServer(t, ln)
	defer srv.stop()
	px, err := faultproxy.New(ln.Addr().String())
	require.NoError(t, err)
	defer px.Close()

	d := &Dialer{KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: 1 * time.Second}
	c, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)
	const n = 24 << 20
	const step = 768 << 10
	var nextCut atomic.Int64
	nextCut.Store(step)
	res := echoTransfer(c, n, 1, func(got int64) {
		// Cut every 768 KiB read back; while no connection is up (the
		// client is reconnecting) wait for the next read to cut.
		if got >= nextCut.Load() && px.ResetAll() > 0 {
			nextCut.Add(step)
		}
	})
	require.NoError(t, c.Close())
	requireTransferOK(t, res, n, 1, srv.digest(t))
	waitSessionEnd(t, c)
	require.GreaterOrEqual(t, px.Resets(), int64(20), "the path was cut at least 20 times")
	t.Logf("%d connections reset during the transfer", px.Resets())
}

// TestEchoSurvivesBlackholes stalls the path silently (no reset, no close)
// several times during an echo; keepalive must notice and resume.
func TestEchoSurvivesBlackholes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t)})
	require.NoError(t, err)
	srv := startEchoServer(t, ln)
	defer srv.stop()
	px, err := faultproxy.New(ln.Addr().String())
	require.NoError(t, err)
	defer px.Close()

	d := &Dialer{
		Logger:    testLogger(t),
		KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: 500 * time.Millisecond,
		HandshakeTimeout: 300 * time.Millisecond,
	}
	c, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)
	const n = 24 << 20
	const holes = 4
	var next atomic.Int64
	next.Store(n / (holes + 1))
	var made atomic.Int32
	res := echoTransfer(c, n, 2, func(got int64) {
		if got >= next.Load() && made.Load() < holes {
			next.Add(n / (holes + 1))
			made.Add(1)
			px.Blackhole()
			time.AfterFunc(800*time.Millisecond, px.Heal)
		}
	})
	require.NoError(t, c.Close())
	requireTransferOK(t, res, n, 2, srv.digest(t))
	waitSessionEnd(t, c)
	require.Equal(t, int32(holes), made.Load())
}
