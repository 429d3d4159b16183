package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// reconnectFloor measures what any move costs at least on this machine, in
// raw TCP: a new connection dialled to the server and one 64-byte round trip
// on it, every gap until stop is closed, while the raw echo stream flows. A
// move must do as much (it dials its target and waits for its answer) and
// more (the handshake, the handover, the refill).
func reconnectFloor(ctx context.Context, addr string, gap time.Duration, stop <-chan struct{}) ([]time.Duration, error) {
	var took []time.Duration
	msg := []byte("reconnect floor: 64 bytes, echoed back by the raw TCP echo server...")[:64]
	got := make([]byte, len(msg))
	var nd net.Dialer
	for {
		select {
		case <-stop:
			return took, nil
		case <-ctx.Done():
			return took, ctx.Err()
		case <-time.After(gap):
		}
		start := time.Now()
		c, err := nd.DialContext(ctx, "tcp", addr)
		if err != nil {
			return took, fmt.Errorf("dialling: %w", err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Write(msg)
		if err == nil {
			_, err = io.ReadFull(c, got)
		}
		d := time.Since(start)
		_ = c.Close()
		if err != nil {
			return took, fmt.Errorf("round trip: %w", err)
		}
		if !bytes.Equal(got, msg) {
			return took, fmt.Errorf("%w: the echo differs", errIntegrity)
		}
		took = append(took, d)
	}
}
