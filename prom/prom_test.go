package prom

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/faultproxy"
)

// TestCounts runs a session through a reset and checks what the metrics say.
func TestCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	srvM, err := New(reg, "srv")
	require.NoError(t, err)
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", &mtcp.Config{Metrics: srvM})
	require.NoError(t, err)
	defer ln.Close()
	require.NoError(t, RegisterListener(reg, "srv", ln))
	cliM, err := New(reg, "cli")
	require.NoError(t, err)
	px, err := faultproxy.New(ln.Addr().String())
	require.NoError(t, err)
	defer px.Close()

	c, err := (&mtcp.Dialer{Metrics: cliM}).DialContext(context.Background(), "tcp", px.Addr())
	require.NoError(t, err)
	sc, err := ln.Accept()
	require.NoError(t, err)
	require.Equal(t, 1.0, testutil.ToFloat64(srvM.opened))
	require.Equal(t, 1.0, testutil.ToFloat64(cliM.opened))
	_, err = c.Write([]byte("before"))
	require.NoError(t, err)
	_, err = sc.Write([]byte("answer"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return ln.Status().Sessions[0].Buffered == 6 }, time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return c.(*mtcp.Conn).Status().Buffered == 6 }, time.Second, time.Millisecond)
	require.Equal(t, 1, px.ResetAll())
	_, err = c.Write([]byte("after"))
	require.NoError(t, err)
	_, err = sc.Write([]byte("again"))
	require.NoError(t, err)
	buf := make([]byte, 11)
	_, err = io.ReadFull(sc, buf)
	require.NoError(t, err)
	require.Equal(t, "beforeafter", string(buf))
	buf = make([]byte, 11)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "answeragain", string(buf))
	require.Eventually(t, func() bool { return testutil.ToFloat64(cliM.resumes) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(srvM.resumes))

	require.NoError(t, c.Close())
	_, _ = io.ReadAll(sc)
	require.NoError(t, sc.Close())
	require.Eventually(t, func() bool { return testutil.ToFloat64(srvM.ended.WithLabelValues("closed")) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, 0.0, testutil.ToFloat64(srvM.ended.WithLabelValues("lost")))
	n, err := testutil.GatherAndCount(reg, "srv_mtcp_sessions")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 0.0, gaugeValue(t, reg, "srv_mtcp_sessions_at_risk"), "a standalone session is never at risk")
}

// gaugeValue reads the value of the gauge named name from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			require.Len(t, f.GetMetric(), 1)
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
