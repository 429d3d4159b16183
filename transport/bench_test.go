package transport

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
)

// BenchmarkCall measures an echo call on a pooled connection over TCP (the
// body travels both ways) against a length-prefixed echo of the same size
// on a raw TCP connection: the call sub-benchmark reports its ns/op as a
// multiple of the tcp one of the same run ("x-tcp").
func BenchmarkCall(b *testing.B) {
	for _, size := range []int{16, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			var tcpNs float64 // ns/op of the tcp sub-benchmark, 0 if it did not run
			b.Run("tcp", func(b *testing.B) {
				tcpNs = rawEcho(b, size)
			})
			b.Run("call", func(b *testing.B) {
				ns := transportCall(b, size)
				if tcpNs > 0 {
					b.ReportMetric(ns/tcpNs, "x-tcp")
				}
			})
		})
	}
}

// transportCall runs the echo call and returns its ns/op.
func transportCall(b *testing.B, size int) float64 {
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
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// rawEcho sends size bytes with a 4-byte length prefix over one TCP
// connection and reads the server's echo of both, and returns its ns/op.
func rawEcho(b *testing.B, size int) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		msg := make([]byte, 4+size)
		for {
			if _, err := io.ReadFull(c, msg[:4]); err != nil {
				return
			}
			n := binary.BigEndian.Uint32(msg[:4])
			if int(n) > size {
				return
			}
			if _, err := io.ReadFull(c, msg[4:4+n]); err != nil {
				return
			}
			if _, err := c.Write(msg[:4+n]); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		c.Close()
		<-served
	}()
	req := binary.BigEndian.AppendUint32(nil, uint32(size))
	req = append(req, make([]byte, size)...)
	resp := make([]byte, len(req))
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Fatal(err)
		}
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}
