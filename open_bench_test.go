package mtcp

import (
	"net"
	"testing"
)

// BenchmarkOpen opens a session (or a TCP connection), has the server
// accept it, and closes both ends, one at a time; the mtcp sub-benchmark
// reports its ns/op as a multiple of the tcp one (x-tcp). Its allocations
// are both ends' of a session's whole life.
func BenchmarkOpen(b *testing.B) {
	var tcpNs float64
	for _, kind := range []string{"tcp", "mtcp"} {
		b.Run(kind, func(b *testing.B) {
			var ln net.Listener
			var err error
			if kind == "tcp" {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
			} else {
				ln, err = Listen("tcp", "127.0.0.1:0", nil)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						close(accepted)
						return
					}
					accepted <- c
				}
			}()
			addr := ln.Addr().String()
			var d Dialer
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				var c net.Conn
				if kind == "tcp" {
					c, err = net.Dial("tcp", addr)
				} else {
					c, err = d.Dial("tcp", addr)
				}
				if err != nil {
					b.Fatal(err)
				}
				s, ok := <-accepted
				if !ok {
					b.Fatal("accept failed")
				}
				_ = c.Close()
				_ = s.Close()
			}
			vsTCP(b, kind, &tcpNs)
		})
	}
}
