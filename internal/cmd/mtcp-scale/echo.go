package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

func echoDeadline(o *options) time.Duration {
	return time.Duration(o.count*len(dataKinds)) * 90 * time.Second
}

// runEcho measures the round trip of a 64-byte request and its echo on one
// session, one at a time.
func runEcho(ctx context.Context, o *options) ([]*table, error) {
	t := &cmpTable{title: "64-byte echo, one request at a time (both ends in this process)", kinds: o.kindsOf(dataKinds)}
	t.notes = append(t.notes, fmt.Sprintf("%d round trips a run after 1,000 of warm-up; every echo compared with its request", o.echoRounds))
	for range o.count {
		for _, kind := range t.kinds {
			lat, err := echoOnce(ctx, o, kind)
			if err != nil {
				return []*table{t.table()}, fmt.Errorf("%s: %w", kind, err)
			}
			t.add("round trip p50", kind, float64(percentile(lat, 50).Nanoseconds())/1e3, fmtMicros)
			t.add("round trip p99", kind, float64(percentile(lat, 99).Nanoseconds())/1e3, fmtMicros)
		}
	}
	return []*table{t.table()}, nil
}

func echoOnce(ctx context.Context, o *options, kind string) ([]time.Duration, error) {
	dl := deadlineOf(ctx)
	srv, err := startServer(kind, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(dl)
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}
	defer srv.close()
	op := newOpener(kind, srv.addr())
	defer op.close()
	c, err := op.open(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(dl)
	req, resp := make([]byte, 64), make([]byte, 64)
	lat := make([]time.Duration, 0, o.echoRounds)
	for i := range 1000 + o.echoRounds {
		fillPattern(req, 1, uint64(i*64))
		start := time.Now()
		if _, err := c.Write(req); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return nil, err
		}
		if i >= 1000 {
			lat = append(lat, time.Since(start))
		}
		if !bytes.Equal(req, resp) {
			return nil, fmt.Errorf("%w: echo %d differs from its request", errIntegrity, i)
		}
	}
	slices.Sort(lat)
	return lat, nil
}
