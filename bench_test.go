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

// BenchmarkThroughput streams 64 KiB writes one way; compare the tcp and
// mtcp sub-benchmarks of one run (MB/s).
func BenchmarkThroughput(b *testing.B) {
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
		})
	}
}

// BenchmarkEcho64 measures a 64-byte request and its echo; compare the tcp
// and mtcp sub-benchmarks of one run (ns/op is one round trip).
func BenchmarkEcho64(b *testing.B) {
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
		})
	}
}
