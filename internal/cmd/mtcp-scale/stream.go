package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// echoStream writes pattern bytes on a connection as fast as it takes them
// (or at a set pace) while reading the echo back, checking every byte and
// noting when each read returned.
type echoStream struct {
	c     net.Conn
	base  time.Time
	stop  atomic.Bool
	wrote atomic.Int64
	got   atomic.Int64
	rate  int64 // bytes per second the writer keeps to; 0: as fast as it can
	wdone chan struct{}
	rdone chan struct{}
	fail  chan struct{} // closed when the reader or the writer failed
	once  sync.Once

	// Set by the reader; read once rdone is closed.
	chk   *patternChecker
	times []time.Duration // since base, one per read that returned bytes
	rerr  error
	werr  error
}

func startEchoStream(c net.Conn, seed uint64, deadline time.Time, rate int64) *echoStream {
	s := &echoStream{c: c, base: time.Now(), rate: rate, wdone: make(chan struct{}), rdone: make(chan struct{}), fail: make(chan struct{}),
		chk: newPatternChecker(seed, true), times: make([]time.Duration, 0, 1<<16)}
	_ = c.SetDeadline(deadline)
	go s.write(seed)
	go s.read()
	return s
}

func (s *echoStream) write(seed uint64) {
	defer close(s.wdone)
	buf := make([]byte, 64<<10)
	var off uint64
	for !s.stop.Load() {
		fillPattern(buf, seed, off)
		n, err := s.c.Write(buf)
		off += uint64(n)
		s.wrote.Store(int64(off))
		if err != nil {
			s.werr = fmt.Errorf("write: %w", err)
			s.failed()
			return
		}
		if s.rate > 0 {
			due := s.base.Add(time.Duration(float64(off) / float64(s.rate) * float64(time.Second)))
			time.Sleep(time.Until(due))
		}
	}
	if err := closeWrite(s.c); err != nil {
		s.werr = fmt.Errorf("ending the input: %w", err)
	}
}

func (s *echoStream) read() {
	defer close(s.rdone)
	buf := make([]byte, 64<<10)
	for {
		n, err := s.c.Read(buf)
		if n > 0 {
			s.times = append(s.times, time.Since(s.base))
			if cerr := s.chk.check(buf[:n]); cerr != nil {
				s.rerr = fmt.Errorf("%w: %v", errIntegrity, cerr)
				s.failed()
				return
			}
			s.got.Add(int64(n))
		}
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			s.rerr = fmt.Errorf("read: %w", err)
			s.failed()
			return
		}
	}
}

// failed ends the stream early: the connection is closed, so that neither
// side waits for the other.
func (s *echoStream) failed() {
	s.once.Do(func() {
		close(s.fail)
		s.stop.Store(true)
		_ = s.c.Close()
	})
}

// finish stops the writer and waits for the reader to reach the end of
// the echo (the connection's deadline bounds both); it returns the bytes
// written and the first error.
func (s *echoStream) finish() (int64, error) {
	s.stop.Store(true)
	<-s.wdone
	<-s.rdone
	if s.rerr != nil { // the reader's error first: it says what the writer's follows from
		return s.wrote.Load(), s.rerr
	}
	if s.werr != nil {
		return s.wrote.Load(), s.werr
	}
	if got, wrote := s.got.Load(), s.wrote.Load(); got != wrote {
		return wrote, fmt.Errorf("%w: %d bytes echoed of %d written", errIntegrity, got, wrote)
	}
	if !s.chk.digestsMatch() {
		return s.wrote.Load(), fmt.Errorf("%w: the SHA-256 of the echo differs from that of the input", errIntegrity)
	}
	return s.wrote.Load(), nil
}

// gapsOutside returns the gaps between consecutive reads that overlap none
// of the windows (sorted by start, not overlapping).
func gapsOutside(times []time.Duration, windows [][2]time.Duration) []time.Duration {
	var out []time.Duration
	w := 0
	for k := 0; k+1 < len(times); k++ {
		a, b := times[k], times[k+1]
		for w < len(windows) && windows[w][1] < a {
			w++
		}
		if w < len(windows) && windows[w][0] < b {
			continue // overlaps window w
		}
		out = append(out, b-a)
	}
	return out
}

// stallOver returns the longest gap between consecutive reads among those
// that overlap [from, to]: how long the reader waited for data across it.
func stallOver(times []time.Duration, from, to time.Duration) time.Duration {
	i := max(sort.Search(len(times), func(k int) bool { return times[k] > from })-1, 0)
	var worst time.Duration
	for k := i; k+1 < len(times) && times[k] < to; k++ {
		worst = max(worst, times[k+1]-times[k])
	}
	return worst
}

// echoServer serves a plain echo on a connection (the raw TCP reference).
func echoServer(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = closeWrite(c)
			return
		}
	}
}
