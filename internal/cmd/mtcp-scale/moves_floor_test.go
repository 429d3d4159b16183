package main

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestReconnectFloorDialsAndEchoes: the floor is measured on new
// connections that each carry one verified echo.
func TestReconnectFloorDialsAndEchoes(t *testing.T) {
	srv, err := startServer(kindTCP, echoServer)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop := make(chan struct{})
	time.AfterFunc(200*time.Millisecond, func() { close(stop) })
	took, err := reconnectFloor(ctx, srv.addr(), 5*time.Millisecond, stop)
	if err != nil {
		t.Fatal(err)
	}
	if len(took) == 0 {
		t.Fatal("no reconnect measured in 200ms, one due every 5ms")
	}

	// A server that closes at once fails the floor rather than counting it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	if _, err := reconnectFloor(ctx, ln.Addr().String(), time.Millisecond, make(chan struct{})); err == nil {
		t.Fatal("a server that echoes nothing gave no error")
	}
}

// TestPacedEchoStreamKeepsItsPace: a paced stream writes no more than its
// pace allows (one write of slack), and its echo checks out.
func TestPacedEchoStreamKeepsItsPace(t *testing.T) {
	srv, err := startServer(kindTCP, echoServer)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	c, err := net.Dial("tcp", srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const rate = 1 << 20 // bytes per second
	s := startEchoStream(c, 7, time.Now().Add(30*time.Second), rate)
	time.Sleep(300 * time.Millisecond)
	wrote, err := s.finish()
	elapsed := time.Since(s.base)
	if err != nil {
		t.Fatal(err)
	}
	if most := int64(elapsed.Seconds()*rate) + 64<<10; wrote > most {
		t.Fatalf("wrote %d bytes in %v at %d bytes/s: more than %d", wrote, elapsed, rate, most)
	}
	if wrote == 0 {
		t.Fatal("the paced stream wrote nothing")
	}
}
