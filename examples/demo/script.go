package main

import (
	"context"
	"fmt"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/mtcptest"
)

// script is what the demo does to the pool while the download runs.
type script struct {
	p    *demoPool
	c    *mtcp.Conn
	size int64
	show *progress
	next int
}

func newScript(p *demoPool, c *mtcp.Conn, size int64, show *progress) *script {
	return &script{p: p, c: c, size: size, show: show}
}

// step runs the next act once the download has reached its point.
func (s *script) step(got int64) {
	marks := []float64{0.2, 0.45, 0.7}
	if s.next >= len(marks) || float64(got) < marks[s.next]*float64(s.size) {
		return
	}
	serving := s.p.byName(s.c.MemberName())
	if serving == nil {
		return
	}
	switch s.next {
	case 0:
		s.show.because(fmt.Sprintf("%s drains (as before a deploy); a new member joins", serving.name))
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = serving.ln.Drain(ctx)
		}()
		s.p.replace()
	case 1:
		s.show.because(fmt.Sprintf("%s is killed abruptly (its sockets reset, nothing said); a new member joins", serving.name))
		mtcptest.Crash(serving.ln)
		s.p.replace()
	case 2:
		s.show.because(fmt.Sprintf("%s gets overloaded: it now serves at about 0.6 MiB/s", serving.name))
		serving.overloaded.Store(true)
	}
	s.next++
}
