package faultproxy

import (
	"net"
	"testing"
	"time"

	"github.com/migratory/mtcp/internal/transfer"
)

// TestSetDelayHoldsEveryByte: through a proxy that delays each way by d,
// the first byte of an echo comes back no sooner than 2d, and 4 MiB and the
// end of the stream go through intact (SHA-256 of both directions and of
// what the server read).
func TestSetDelayHoldsEveryByte(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := transfer.Serve(ln, t.Logf, nil)
	defer srv.Stop()
	p, err := New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const d = 20 * time.Millisecond
	p.SetDelay(d)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))

	const n, seed = 4 << 20, 7
	start := time.Now()
	var firstBack time.Duration
	res := transfer.Echo(c.(*net.TCPConn), transfer.NewPattern(n, seed), func(int64) {
		if firstBack == 0 {
			firstBack = time.Since(start)
		}
	})
	transfer.RequireEcho(t, res, n, seed, srv.Digest(t))
	if firstBack < 2*d {
		t.Fatalf("the first byte came back after %v through a delay of %v each way", firstBack, d)
	}
}
