package mtcp

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// BenchmarkMigrationPause moves one session around a 3-member pool: each
// op of mtcp is one move, timed from the Migrate call to the first echoed
// byte that came back through the new member. Each op of tcp is what any
// move costs at least: a new raw TCP connection to an echo server and the
// first 64-byte echo on it. Both report the pause's p50, p90 and p99; mtcp
// also its p50 as a multiple of tcp's of the same run (p50-x-tcp).
func BenchmarkMigrationPause(b *testing.B) {
	var tcpP50 time.Duration
	b.Run("tcp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_, _ = io.Copy(c, c)
				}()
			}
		}()
		msg := make([]byte, 64)
		pauses := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, msg); err != nil {
				b.Fatal(err)
			}
			pauses = append(pauses, time.Since(start))
			c.Close()
		}
		b.StopTimer()
		tcpP50 = reportPauses(b, pauses)
	})
	b.Run("mtcp", func(b *testing.B) {
		tp := startPool(b, 3, nil)
		defer tp.close()
		c, err := (&Dialer{}).Dial("tcp", tp.members[0].Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		mc := c.(*Conn)
		waitMembers(b, c, 3)
		msg := make([]byte, 64)
		echo := func() {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, msg); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < 20; i++ { // warm up the control-plane connections
			echo()
		}
		pauses := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			to := tp.members[(i+1)%3].Addr().String()
			start := time.Now()
			if err := mc.Migrate(context.Background(), to); err != nil {
				b.Fatal(err)
			}
			echo()
			pauses = append(pauses, time.Since(start))
		}
		b.StopTimer()
		p50 := reportPauses(b, pauses)
		if tcpP50 > 0 { // 0: the tcp sub-benchmark did not run (-bench filter)
			b.ReportMetric(float64(p50)/float64(tcpP50), "p50-x-tcp")
		}
	})
}

// reportPauses reports the p50, p90 and p99 of pauses and returns the p50.
func reportPauses(b *testing.B, pauses []time.Duration) time.Duration {
	slices.Sort(pauses)
	at := func(p int) time.Duration { return pauses[len(pauses)*p/100] }
	b.ReportMetric(float64(at(50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(at(90).Microseconds()), "p90-µs")
	b.ReportMetric(float64(at(99).Microseconds()), "p99-µs")
	return at(50)
}
