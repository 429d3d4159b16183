package mtcp

import (
	"io"
	"net"
	"testing"
)

// benchPair returns a connected client/server pair, raw TCP or mtcp.
func benchPair(b *testing.B, kind string) (client, server net.Conn, cleanup func()) {
	b.Helper()
	var ln net.Listener
	var err error
	switch kind {
	case "tcp":
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	case "mtcp":
		ln, err = Listen("tcp", "127.0.0.1:0", nil)
	}
	if err != nil {
		b.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	if kind == "tcp" {
		client, err = net.Dial("tcp", ln.Addr().String())
	} else {
		client, err = Dial("tcp", ln.Addr().String())
	}
	if err != nil {
		b.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		b.Fatal("accept failed")
	}
	return client, server, func() { client.Close(); server.Close(); ln.Close() }
}

// nsPerOp is the ns/op of a benchmark that has finished its loop.
func nsPerOp(b *testing.B) float64 { return float64(b.Elapsed().Nanoseconds()) / float64(b.N) }

// vsTCP keeps the ns/op of the tcp sub-benchmark of a run, for the mtcp one
// to report its own as a multiple of it ("x-tcp": 1.5 is half again as
// slow). A sub-benchmark calls it last, with the timer still running.
func vsTCP(b *testing.B, kind string, tcpNs *float64) {
	ns := nsPerOp(b)
	if kind == "tcp" {
		*tcpNs = ns
		return
	}
	if *tcpNs > 0 { // 0: the tcp sub-benchmark did not run (-bench filter)
		b.ReportMetric(ns / *tcpNs, "x-tcp")
	}
}

// BenchmarkThroughput streams 64 KiB writes one way; the mtcp sub-benchmark
// reports its ns/op as a multiple of the tcp one of the same run (x-tcp).
func BenchmarkThroughput(b *testing.B) {
	var tcpNs float64
	for _, kind := range []string{"tcp", "mtcp"} {
		b.Run(kind, func(b *testing.B) {
			client, server, cleanup := benchPair(b, kind)
			defer cleanup()
			buf := make([]byte, 64<<10)
			done := make(chan int64)
			go func() {
				// Read with the same 64 KiB buffer on both (io.Copy to
				// io.Discard would read 8 KiB at a time).
				rbuf := make([]byte, 64<<10)
				var n int64
				for {
					k, err := server.Read(rbuf)
					n += int64(k)
					if err != nil {
						break
					}
				}
				done <- n
			}()
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := client.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if cw, ok := client.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			if n := <-done; n != int64(b.N)*int64(len(buf)) {
				b.Fatalf("received %d bytes, want %d", n, int64(b.N)*int64(len(buf)))
			}
			vsTCP(b, kind, &tcpNs)
		})
	}
}

// BenchmarkEcho64 measures a 64-byte request and its echo (ns/op is one
// round trip); the mtcp sub-benchmark reports its ns/op as a multiple of
// the tcp one of the same run (x-tcp).
func BenchmarkEcho64(b *testing.B) {
	var tcpNs float64
	for _, kind := range []string{"tcp", "mtcp"} {
		b.Run(kind, func(b *testing.B) {
			client, server, cleanup := benchPair(b, kind)
			defer cleanup()
			go func() {
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(server, buf); err != nil {
						return
					}
					if _, err := server.Write(buf); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, 64)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := client.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(client, buf); err != nil {
					b.Fatal(err)
				}
			}
			vsTCP(b, kind, &tcpNs)
		})
	}
}
