package mtcp

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/migratory/mtcp/internal/faultproxy"
)

// TestEchoSurvivesResets echoes 24 MiB both ways through a proxy that resets
// the connection after every 768 KiB echoed.
func TestEchoSurvivesResets(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := listenEcho(t, nil)
	defer srv.stop()
	px := newProxy(t, srv.addr())
	defer px.Close()

	d := &Dialer{KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: 1 * time.Second}
	c, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)
	const n = 24 << 20
	cut, _ := resetEvery(px, 768<<10)
	res := echoTransfer(c, n, 1, cut)
	require.NoError(t, c.Close())
	requireTransferOK(t, res, n, 1, srv.digest(t))
	waitSessionEnd(t, c)
	require.GreaterOrEqual(t, px.Resets(), int64(20), "the path was cut at least 20 times")
	t.Logf("%d connections reset during the transfer", px.Resets())
}

// resetEvery returns an echoTransfer progress function that resets the
// connections through px each time step more bytes have been read back,
// and the number of resets it made. While no connection is up (the client
// is reconnecting, or reads bytes buffered before the last reset) it waits
// for the next read to cut.
func resetEvery(px *faultproxy.Proxy, step int64) (onProgress func(got int64), cuts *atomic.Int32) {
	var next atomic.Int64
	next.Store(step)
	cuts = new(atomic.Int32)
	return func(got int64) {
		if got >= next.Load() && px.ResetAll() > 0 {
			next.Add(step)
			cuts.Add(1)
		}
	}, cuts
}

// TestEchoSurvivesBlackholes stalls the path silently (no reset, no close)
// several times during an echo; keepalive must notice and resume.
func TestEchoSurvivesBlackholes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := listenEcho(t, &Config{Logger: testLogger(t)})
	defer srv.stop()
	px := newProxy(t, srv.addr())
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
