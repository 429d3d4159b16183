package mtcp

import (
	"context"
	"fmt"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// toxicProxy is a toxiproxy proxy run in the test process, for latency,
// bandwidth and other slow-path faults.
type toxicProxy struct {
	t *testing.T
	p *toxiproxy.Proxy
}

func newToxicProxy(t *testing.T, upstream string) *toxicProxy {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "mtcp-test", "127.0.0.1:0", upstream)
	require.NoError(t, p.Start())
	return &toxicProxy{t: t, p: p}
}

func (tp *toxicProxy) Addr() string { return tp.p.Listen }

// limit caps the bandwidth in both directions, in KB/s.
func (tp *toxicProxy) limit(kbps int) {
	for _, stream := range []string{"downstream", "upstream"} {
		_, err := tp.p.Toxics.AddToxicJson(strings.NewReader(fmt.Sprintf(
			`{"name":"bw-%s","type":"bandwidth","stream":%q,"attributes":{"rate":%d}}`, stream, stream, kbps)))
		require.NoError(tp.t, err)
	}
}

// Close removes the toxics (which stops their goroutines) and the proxy.
func (tp *toxicProxy) Close() {
	tp.p.Toxics.ResetToxics(context.Background())
	tp.p.Stop()
}
