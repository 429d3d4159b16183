package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The kinds compared for data transfer: yamux streams share one session.
var dataKinds = []string{kindTCP, kindMTCP, kindYamuxStream}

func bulkDeadline(o *options) time.Duration {
	sizes, _ := parseInts(o.bulkSessions)
	return time.Duration(o.count*len(sizes)*len(dataKinds)) * (o.bulkWarmup + o.bulkTime + 60*time.Second)
}

const bulkWrite = 64 << 10

// runBulk streams 64 KiB writes one way on k sessions at once and measures
// the aggregate rate at which the readers receive, and the CPU time both
// ends spend per GB. Every byte is checked against what was sent.
func runBulk(ctx context.Context, o *options) ([]*table, error) {
	sizes, err := parseInts(o.bulkSessions)
	if err != nil {
		return nil, fmt.Errorf("-bulk-sessions: %w", err)
	}
	t := &cmpTable{title: "bulk transfer, 64 KiB writes, one way (both ends in this process)", kinds: o.kindsOf(dataKinds)}
	t.notes = append(t.notes,
		fmt.Sprintf("rate: bytes the readers received over %v, after %v of warm-up; every byte checked against what was sent", o.bulkTime, o.bulkWarmup),
		"in the first second: from the writers' start (sessions already open)",
		"CPU per GB: user and system time of the process (both ends) per GB received",
		"yamux streams: all in one session over one TCP connection")
	for range o.count {
		for _, k := range sizes {
			for _, kind := range t.kinds {
				f, err := bulkOnce(ctx, o, kind, k)
				if err != nil {
					return []*table{t.table()}, fmt.Errorf("%s, %d sessions: %w", kind, k, err)
				}
				label := fmt.Sprintf("%d sessions", k)
				if k == 1 {
					label = "1 session"
				}
				t.add("aggregate throughput, "+label, kind, f.rate, fmtMBs)
				t.add("CPU per GB, "+label, kind, f.cpuPerGB, fmtSecs)
				if f.firstSecond > 0 {
					t.add("aggregate throughput in the first second, "+label, kind, f.firstSecond, fmtMBs)
				}
			}
		}
	}
	return []*table{t.table()}, nil
}

type bulkFigures struct{ rate, cpuPerGB, firstSecond float64 }

func bulkOnce(ctx context.Context, o *options, kind string, k int) (bulkFigures, error) {
	var f bulkFigures
	dl := deadlineOf(ctx)
	var received atomic.Int64
	var mu sync.Mutex
	totals := map[uint64]int64{}
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	srv, err := startServer(kind, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(dl)
		var hdr [8]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			fail(fmt.Errorf("reading a stream's seed: %w", err))
			return
		}
		seed := binary.BigEndian.Uint64(hdr[:])
		chk := newPatternChecker(seed, false)
		buf := make([]byte, bulkWrite)
		var n int64
		for {
			k, err := c.Read(buf)
			if k > 0 {
				if cerr := chk.check(buf[:k]); cerr != nil {
					fail(fmt.Errorf("%w: %v", errIntegrity, cerr))
					return
				}
				n += int64(k)
				received.Add(int64(k))
			}
			if err == io.EOF {
				mu.Lock()
				totals[seed] = n
				mu.Unlock()
				return
			}
			if err != nil {
				fail(fmt.Errorf("reader: %w", err))
				return
			}
		}
	})
	if err != nil {
		return f, err
	}
	defer srv.close()
	op := newOpener(kind, srv.addr())
	defer op.close()
	conns, err := openMany(ctx, op, k, 16)
	if err != nil {
		return f, err
	}
	var stop atomic.Bool
	sent := make([]int64, k)
	var writers sync.WaitGroup
	for i, c := range conns {
		writers.Add(1)
		go func() {
			defer writers.Done()
			_ = c.SetDeadline(dl)
			seed := uint64(i + 1)
			if _, err := c.Write(binary.BigEndian.AppendUint64(nil, seed)); err != nil {
				fail(fmt.Errorf("writer: %w", err))
				return
			}
			buf := make([]byte, bulkWrite)
			var off uint64
			for !stop.Load() {
				fillPattern(buf, seed, off)
				if _, err := c.Write(buf); err != nil {
					fail(fmt.Errorf("writer: %w", err))
					return
				}
				off += bulkWrite
			}
			sent[i] = int64(off)
			if err := closeWrite(c); err != nil {
				fail(fmt.Errorf("writer: ending the stream: %w", err))
			}
		}()
	}
	defer func() {
		stop.Store(true)
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	began := time.Now()
	if o.bulkWarmup >= time.Second {
		if err := sleepCtx(ctx, time.Second); err != nil {
			return f, err
		}
		f.firstSecond = float64(received.Load()) / time.Since(began).Seconds()
	}
	if err := sleepCtx(ctx, time.Until(began.Add(o.bulkWarmup))); err != nil {
		return f, err
	}
	r0, c0, t0 := received.Load(), cpuTime(), time.Now()
	if err := sleepCtx(ctx, o.bulkTime); err != nil {
		return f, err
	}
	r1, c1, t1 := received.Load(), cpuTime(), time.Now()
	stop.Store(true)
	writers.Wait()
	for {
		mu.Lock()
		done, err := len(totals) == k, firstErr
		mu.Unlock()
		if err != nil {
			return f, err
		}
		if done {
			break
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return f, fmt.Errorf("waiting for the readers: %w", err)
		}
	}
	for i, n := range sent {
		if got := totals[uint64(i+1)]; got != n {
			return f, fmt.Errorf("%w: stream %d: %d bytes received, %d sent", errIntegrity, i+1, got, n)
		}
	}
	moved := float64(r1 - r0)
	if moved <= 0 {
		return f, errors.New("nothing was received in the measured interval")
	}
	f.rate = moved / t1.Sub(t0).Seconds()
	f.cpuPerGB = (c1 - c0).Seconds() / (moved / 1e9)
	return f, nil
}
