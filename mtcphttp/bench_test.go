package mtcphttp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/pool"
)

// BenchmarkKeepAliveRequests measures sequential 1 KiB GETs over one
// keep-alive connection: raw TCP, a standalone mtcp listener served
// directly, a member of a pool of two served directly (no checkpoints: its
// sessions cannot move), and the same member served through this package
// (a checkpoint at every idle point, copied to the other member).
func BenchmarkKeepAliveRequests(b *testing.B) {
	h := newBodyHandler()
	const n = 1 << 10
	run := func(b *testing.B, ln net.Listener, serve func(), dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
		go serve()
		tr := &http.Transport{DialContext: dial, MaxConnsPerHost: 1}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		url := fmt.Sprintf("http://%s/r?id=1&n=%d", ln.Addr(), n)
		get := func() {
			resp, err := client.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		get()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			get()
		}
	}
	b.Run("tcp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		defer srv.Close()
		run(b, ln, func() { _ = srv.Serve(ln) }, (&net.Dialer{}).DialContext)
	})
	b.Run("mtcp", func(b *testing.B) {
		ln, err := mtcp.Listen("tcp", "127.0.0.1:0", nil)
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		defer srv.Close()
		run(b, ln, func() { _ = srv.Serve(ln) }, (&mtcp.Dialer{}).DialContext)
	})
	// A pool of two members; wrap serves the first one's listener.
	pooled := func(b *testing.B, wrap bool) {
		var lns []*mtcp.Listener
		for i := 0; i < 2; i++ {
			var join []string
			if i > 0 {
				join = []string{lns[0].GossipAddr()}
			}
			cfg := mtcp.NewPoolConfig(fmt.Sprintf("b%d", i), "127.0.0.1:0", testKey, join...)
			cfg.PoolProfile = pool.ProfileLocal
			ln, err := mtcp.Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			lns = append(lns, ln)
		}
		hs := &http.Server{Handler: h}
		defer hs.Close()
		serve := func() { _ = hs.Serve(lns[0]) }
		if wrap {
			s := New(hs, lns[0])
			serve = func() { _ = s.Serve() }
		}
		run(b, lns[0], serve, (&mtcp.Dialer{}).DialContext)
	}
	b.Run("pool", func(b *testing.B) { pooled(b, false) })
	b.Run("pool-mtcphttp", func(b *testing.B) { pooled(b, true) })
}
