package mtcp

import (
	"context"
	"io"
	"sort"
	"testing"
	"time"
)

// BenchmarkMigrationPause moves one session around a 3-member pool: each
// op is one move, timed from the Migrate call to the first echoed byte that
// came back through the new member. It reports the pause's p50 and p99.
func BenchmarkMigrationPause(b *testing.B) {
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
	sort.Slice(pauses, func(i, j int) bool { return pauses[i] < pauses[j] })
	b.ReportMetric(float64(pauses[len(pauses)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(pauses[len(pauses)*90/100].Microseconds()), "p90-µs")
	b.ReportMetric(float64(pauses[len(pauses)*99/100].Microseconds()), "p99-µs")
}
