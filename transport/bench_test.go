package transport

import (
	"context"
	"fmt"
	"net"
	"testing"
)

// BenchmarkCall measures an echo call on a pooled connection over TCP
// (the body travels both ways).
func BenchmarkCall(b *testing.B) {
	for _, size := range []int{16, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			s, err := NewServer(ln, Config{Key: testKey})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.Handle("echo", echoHandler)
			c, err := NewClient(Config{Key: testKey})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := echoMsg{Data: make([]byte, size)}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				if err := c.Call(context.Background(), ln.Addr().String(), "echo", req, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
