package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp"
)

type config struct {
	duration  time.Duration
	members   int
	clients   int
	killEvery time.Duration
	replicas  int
	pairs     int // percent of kills that take two members at once
	seed      int64
	memberBin string
	profile   string
	verbose   bool
}

// summary is what a chaos run did.
type summary struct {
	took       time.Duration
	members    int
	sessions   atomic.Int64
	completed  atomic.Int64
	failed     atomic.Int64 // every session that failed, double failures included
	doubles    atomic.Int64 // sessions lost with their member and every member holding their copies
	noCopy     atomic.Int64 // sessions lost with their member before any other member had a copy
	mismatched atomic.Int64
	bytes      atomic.Int64 // echoed (each direction counted)
	lost       atomic.Int64 // bytes written and never echoed back, in failed sessions other than double failures
	doubleLost atomic.Int64 // the same, in double failures
	crashes    int
	failovers  int
	unreported []string // killed members that did not say what they held

	mu      sync.Mutex
	pauses  []time.Duration
	errs    []string
	doubled []string
}

// others is the number of failed sessions that are not double failures
// (those lost before their first copy included).
func (s *summary) others() int64 { return s.failed.Load() - s.doubles.Load() }

func (s *summary) addError(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) < 10 {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
	}
}

func (s *summary) addDouble(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.doubled) < 10 {
		s.doubled = append(s.doubled, fmt.Sprintf(format, args...))
	}
}

func (s *summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mtcp chaos summary\n")
	fmt.Fprintf(&b, "  duration          %v\n", s.took.Round(time.Millisecond))
	fmt.Fprintf(&b, "  members           %d live, %d crashes (SIGKILL) and restarts\n", s.members, s.crashes)
	fmt.Fprintf(&b, "  sessions          %d (%d completed, %d failed)\n", s.sessions.Load(), s.completed.Load(), s.failed.Load())
	fmt.Fprintf(&b, "  double failures   %d (lost by design: their member and every member holding their copies killed; %d bytes)\n",
		s.doubles.Load(), s.doubleLost.Load())
	fmt.Fprintf(&b, "  other failures    %d (%d lost with their member before any copy of their checkpoints existed)\n",
		s.others(), s.noCopy.Load())
	fmt.Fprintf(&b, "  bytes echoed      %d (%.1f MiB each way)\n", s.bytes.Load(), float64(s.bytes.Load())/2/(1<<20))
	fmt.Fprintf(&b, "  failovers         %d sessions restored from a checkpoint on another member\n", s.failovers)
	fmt.Fprintf(&b, "  lost bytes        %d\n", s.lost.Load())
	fmt.Fprintf(&b, "  digest mismatches %d\n", s.mismatched.Load())
	if len(s.unreported) > 0 {
		fmt.Fprintf(&b, "  unreported        %v (killed without saying what they held)\n", s.unreported)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pauses) > 0 {
		p := append([]time.Duration(nil), s.pauses...)
		sort.Slice(p, func(i, j int) bool { return p[i] < p[j] })
		fmt.Fprintf(&b, "  failover time     p50 %v  p99 %v  max %v  (%d sessions caught on a crashed member)\n",
			p[len(p)/2].Round(time.Millisecond), p[len(p)*99/100].Round(time.Millisecond), p[len(p)-1].Round(time.Millisecond), len(p))
	}
	for _, e := range s.doubled {
		fmt.Fprintf(&b, "  double failure: %s\n", e)
	}
	for _, e := range s.errs {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	return b.String()
}

// tracker knows which member each session is on, to time failovers.
type tracker struct {
	mu      sync.Mutex
	on      map[*mtcp.Conn]string
	waiting map[*mtcp.Conn]time.Time
	sum     *summary
}

func (t *tracker) progress(c *mtcp.Conn) {
	now := time.Now()
	server := c.MemberName()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.on[c] = server
	if since, ok := t.waiting[c]; ok {
		delete(t.waiting, c)
		t.sum.mu.Lock()
		t.sum.pauses = append(t.sum.pauses, now.Sub(since))
		t.sum.mu.Unlock()
	}
}

func (t *tracker) crashed(member string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c, on := range t.on {
		if on == member {
			t.waiting[c] = at
		}
	}
}

func (t *tracker) forget(c *mtcp.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.on, c)
	delete(t.waiting, c)
}

func run(ctx context.Context, cfg config) (*summary, error) {
	sum := &summary{members: cfg.members}
	start := time.Now()
	defer func() { sum.took = time.Since(start) }()
	fl := newFleet(cfg)
	defer fl.stopAll()
	for i := 0; i < cfg.members; i++ {
		if _, err := fl.start(); err != nil {
			return sum, err
		}
	}
	time.Sleep(time.Second) // let gossip settle
	tr := &tracker{on: map[*mtcp.Conn]string{}, waiting: map[*mtcp.Conn]time.Time{}, sum: sum}
	deadline := time.Now().Add(cfg.duration)
	rng := rand.New(rand.NewPCG(uint64(cfg.seed), 1))
	var rngMu sync.Mutex
	rnd := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	svc, err := startService(fl, rnd)
	if err != nil {
		return sum, err
	}
	defer svc.close()

	var wg sync.WaitGroup
	for i := 0; i < cfg.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				runSession(ctx, svc.addr(), fl, tr, sum, rnd)
			}
		}()
	}

	// The killer: a random member dies now and then and a new one joins.
	for time.Now().Before(deadline) {
		wait := cfg.killEvery/2 + time.Duration(rnd(int(cfg.killEvery)))
		select {
		case <-time.After(min(wait, time.Until(deadline))):
		case <-ctx.Done():
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		fl.mu.Lock()
		alive := append([]*member(nil), fl.alive...)
		fl.mu.Unlock()
		k := 1
		if len(alive) > 2 && rnd(100) < cfg.pairs {
			k = 2 // a double failure for the sessions of the one with copies on the other
		}
		var victims []*member
		for range k {
			i := rnd(len(alive))
			victims = append(victims, alive[i])
			alive = append(alive[:i], alive[i+1:]...)
		}
		at := time.Now()
		for _, v := range victims {
			tr.crashed(v.name, at)
		}
		fl.kill(victims...)
		for range victims {
			sum.crashes++
			if _, err := fl.start(); err != nil {
				sum.addError("restarting a member: %v", err)
			}
		}
	}
	wg.Wait()
	fl.mu.Lock()
	sum.failovers = fl.restore
	fl.mu.Unlock()
	sum.unreported = fl.unreported()
	if sum.lost.Load() > 0 || sum.others() > 0 || sum.mismatched.Load() > 0 {
		return sum, fmt.Errorf("%d sessions failed other than by double failures, %d lost bytes, %d digest mismatches",
			sum.others(), sum.lost.Load(), sum.mismatched.Load())
	}
	if sum.completed.Load() == 0 {
		return sum, errors.New("no session completed")
	}
	return sum, nil
}

// runSession opens a session through the service address (it leads to a
// random live member), echoes a random amount of data at a modest rate (so
// that it lives through crashes) and checks it.
func runSession(ctx context.Context, service string, fl *fleet, tr *tracker, sum *summary, rnd func(int) int) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	clientLog := &cappedBuffer{max: 64 << 10}
	d := &mtcp.Dialer{Logger: slog.New(slog.NewTextHandler(clientLog, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	nc, err := d.DialContext(dctx, "tcp", service)
	cancel()
	if err != nil {
		time.Sleep(20 * time.Millisecond) // the member just died: not a session
		return
	}
	c := nc.(*mtcp.Conn)
	sum.sessions.Add(1)
	defer tr.forget(c)
	n := int64(256<<10 + rnd(4<<20))
	rate := float64(2<<20 + rnd(6<<20)) // bytes per second
	src := make([]byte, n)
	for i := range src {
		src[i] = byte(rnd(256))
	}
	sent := sha256.Sum256(src)
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		for off := int64(0); off < n; {
			k := min(int64(32<<10), n-off)
			if ahead := time.Duration(float64(off)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
			if _, werr = c.Write(src[off : off+k]); werr != nil {
				return
			}
			off += k
		}
		werr = c.CloseWrite()
	}()
	h := sha256.New()
	got := int64(0)
	buf := make([]byte, 64<<10)
	var rerr error
	for {
		k, err := c.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			got += int64(k)
			tr.progress(c)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
	}
	<-done
	_ = c.Close()
	id := c.SessionID()
	if rerr != nil || werr != nil {
		sum.failed.Add(1)
		kind, story := fl.classify(id, time.Now(), cmp.Or(rerr, werr))
		if kind == lossDouble {
			sum.doubles.Add(1)
			sum.doubleLost.Add(n - got)
			sum.addDouble("session %s: %s: %v", id, story, cmp.Or(rerr, werr))
		} else {
			if kind == lossNoCopy {
				sum.noCopy.Add(1)
			}
			sum.lost.Add(n - got)
			sum.addError("session %s (%s): read: %v, write: %v", id, story, rerr, werr)
			tell(fl, id, clientLog)
		}
		return
	}
	sum.bytes.Add(2 * got)
	echoed := h.Sum(nil)
	var final []byte
	for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
		var ok bool
		if final, ok = fl.final(id); ok {
			break
		}
	}
	switch {
	case got != n || !bytes.Equal(echoed, sent[:]):
		sum.mismatched.Add(1)
		sum.addError("session %s: echoed %d of %d bytes, digests differ", id, got, n)
		tell(fl, id, clientLog)
	case !bytes.Equal(final, sent[:]):
		sum.mismatched.Add(1)
		sum.addError("session %s: the application's digest of its input differs (%x)", id, final)
		tell(fl, id, clientLog)
	default:
		sum.completed.Add(1)
	}
}

// tell writes to standard error what is known of a session that failed or
// differs: its client's log and what the members said and logged of it.
func tell(fl *fleet, id string, clientLog *cappedBuffer) {
	fmt.Fprintf(os.Stderr, "session %s: client log:\n%s  members:\n%s", id, clientLog.String(), fl.story(id))
}

// cappedBuffer keeps the first max bytes written to it.
type cappedBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}
