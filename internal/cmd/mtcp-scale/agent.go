package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/migratory/mtcp/internal/parallel"

	"github.com/migratory/mtcp"
)

// Agent holds the client ends of a scenario's sessions; its methods are
// called through net/rpc (clients.go).
type Agent struct {
	mu      sync.Mutex
	held    []net.Conn
	openers []*opener
	echoes  []*echoClient
	busy    *busyLoops
	streams []*streamClient
	limit   uint64
	base    int // goroutines when the agent started
}

func newAgent() *Agent {
	a := &Agent{base: runtime.NumGoroutine()}
	if os.Getenv(childEnv) == "1" {
		a.limit, _ = raiseFileLimit(fileLimitWanted)
	}
	return a
}

// HelloReply says who the agent is.
type HelloReply struct {
	PID       int
	FileLimit uint64 // 0 in the parent's process
}

// Hello answers with the agent's process id and file limit.
func (a *Agent) Hello(_ struct{}, r *HelloReply) error {
	r.PID, r.FileLimit = os.Getpid(), a.limit
	return nil
}

// Stats reads the agent's process figures, after a collection if gc.
func (a *Agent) Stats(gc bool, r *ProcStats) error {
	*r = readStats(gc)
	return nil
}

// OpenArgs asks for N connections of a kind, opened by Dialers at once.
type OpenArgs struct {
	Kind, Addr string
	N, Dialers int
	Deadline   time.Time
}

// OpenReply says how opening went.
type OpenReply struct {
	Elapsed        time.Duration
	Opened, Failed int
	Errors         []string // the commonest reasons for failures
	P50, P99       time.Duration
}

// Open opens connections and holds them until CloseAll; it goes on past
// failures, up to half of N.
func (a *Agent) Open(args OpenArgs, r *OpenReply) error {
	ctx, cancel := context.WithDeadline(context.Background(), args.Deadline)
	defer cancel()
	o := a.opener(args.Kind, args.Addr)
	start := time.Now()
	res, err := openCounting(ctx, o, args.N, args.Dialers)
	r.Elapsed = time.Since(start)
	r.Opened, r.Failed, r.Errors = len(res.conns), res.failed, topErrors(res.errs, 3)
	r.P50, r.P99 = percentile(res.took, 50), percentile(res.took, 99)
	a.mu.Lock()
	a.held = append(a.held, res.conns...)
	a.mu.Unlock()
	return err
}

// Attached counts the held mtcp sessions whose link is up.
func (a *Agent) Attached(_ struct{}, r *int) error {
	a.mu.Lock()
	held := a.held
	a.mu.Unlock()
	*r = attachedOf(held)
	return nil
}

// attachedOf counts the mtcp sessions among conns whose link is up.
func attachedOf(conns []net.Conn) int {
	n := 0
	for _, c := range conns {
		if mc, ok := c.(*mtcp.Conn); ok && mc.Status().Attached {
			n++
		}
	}
	return n
}

// opener returns the agent's opener for kind and addr (a yamux stream
// opener keeps its one session across calls).
func (a *Agent) opener(kind, addr string) *opener {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, o := range a.openers {
		if o.kind == kind && o.addr == addr {
			return o
		}
	}
	o := newOpener(kind, addr)
	a.openers = append(a.openers, o)
	return o
}

// CloseAll closes every connection and session the agent holds; in a
// process of its own, it then waits at most settle for it to go quiet.
func (a *Agent) CloseAll(settle time.Duration, _ *struct{}) error {
	a.mu.Lock()
	held, openers, echoes, busy, streams := a.held, a.openers, a.echoes, a.busy, a.streams
	a.held, a.openers, a.echoes, a.busy, a.streams = nil, nil, nil, nil, nil
	a.mu.Unlock()
	if busy != nil {
		busy.stop()
	}
	for _, c := range held {
		_ = c.Close()
	}
	for _, o := range openers {
		o.close()
	}
	for _, e := range echoes {
		_ = e.c.Close()
	}
	for _, s := range streams {
		s.close()
	}
	if a.limit != 0 { // in a child process of its own: wait for it to go quiet
		settleGoroutines(a.base+32, settle)
	}
	return nil
}

// EchoOpenArgs asks for N mtcp sessions to Addr running echo rounds of
// Round bytes: one round each once opened.
type EchoOpenArgs struct {
	Addr       string
	N, Dialers int
	Round      int
	Deadline   time.Time
}

// EchoOpenReply says how opening went.
type EchoOpenReply struct {
	Elapsed time.Duration
	Failed  int      // sessions that did not open or whose first round failed
	Errors  []string // the commonest reasons
}

// EchoOpen opens the echo sessions, each with a Dialer of its own whose
// Metrics count its moves, and whose policy moves only when the server
// asks (a DefaultPolicy moves a session that went quiet after a busy start
// to a member with fewer sessions). It goes on past failures, up to half of N.
func (a *Agent) EchoOpen(args EchoOpenArgs, r *EchoOpenReply) error {
	ctx, cancel := context.WithDeadline(context.Background(), args.Deadline)
	defer cancel()
	es := make([]*echoClient, args.N)
	var mu sync.Mutex
	why := map[string]int{}
	limit := args.N/2 + 10
	start := time.Now()
	err := parallel.ForEach(ctx, args.N, args.Dialers, func(i int) error {
		e, err := dialEcho(ctx, args.Addr, uint64(i+1), obeyPolicy{})
		if err == nil {
			if err = e.round(args.Round, args.Deadline); err != nil {
				_ = e.c.Close()
			}
		}
		if err == nil {
			es[i] = e
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		r.Failed++
		why[err.Error()]++
		if r.Failed >= limit {
			return fmt.Errorf("%d of %d sessions failed to open, the last: %w", r.Failed, args.N, err)
		}
		return nil
	})
	r.Elapsed = time.Since(start)
	r.Errors = topErrors(why, 3)
	a.mu.Lock()
	for _, e := range es {
		if e != nil {
			a.echoes = append(a.echoes, e)
		}
	}
	a.mu.Unlock()
	return err
}

// BusyArgs makes every Every-th echo session run rounds of Round bytes,
// Pause apart, until EchoFinish.
type BusyArgs struct {
	Every, Round int
	Pause        time.Duration
}

// EchoBusy starts the busy sessions' rounds.
func (a *Agent) EchoBusy(args BusyArgs, _ *struct{}) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.busy != nil {
		return errors.New("busy loops already running")
	}
	a.busy = startBusy(a.echoes, args)
	return nil
}

// FinishArgs asks every echo session for a last round of Round bytes, then
// to end its input and read to the end.
type FinishArgs struct {
	Round, Dialers int
	Deadline       time.Time
}

// EchoFinishReply holds each session's outcome.
type EchoFinishReply struct {
	Sessions   []EchoResult
	BusyRounds int
	Took       time.Duration // from the call to the last session's end
}

// EchoFinish stops the busy rounds, finishes every session and reports.
func (a *Agent) EchoFinish(args FinishArgs, r *EchoFinishReply) error {
	a.mu.Lock()
	es, busy := a.echoes, a.busy
	a.busy = nil
	a.mu.Unlock()
	start := time.Now()
	defer func() { r.Took = time.Since(start) }()
	if busy != nil {
		r.BusyRounds = busy.stop()
	}
	r.Sessions = make([]EchoResult, len(es))
	ctx, cancel := context.WithDeadline(context.Background(), args.Deadline)
	defer cancel()
	_ = parallel.ForEach(ctx, len(es), args.Dialers, func(i int) error {
		r.Sessions[i] = es[i].finish(args.Round, args.Deadline)
		return nil
	})
	for i, e := range es { // any left by a deadline
		if r.Sessions[i].ID == "" {
			r.Sessions[i] = e.result(errors.New("not finished before the deadline"))
		}
	}
	return nil
}

// StreamOpenArgs asks for N mtcp sessions to Addr that each send their
// seed and then read the server's paced stream.
type StreamOpenArgs struct {
	Addr       string
	N, Dialers int
	Deadline   time.Time
}

// StreamOpen opens the streaming sessions.
func (a *Agent) StreamOpen(args StreamOpenArgs, r *OpenReply) error {
	ctx, cancel := context.WithDeadline(context.Background(), args.Deadline)
	defer cancel()
	ss := make([]*streamClient, args.N)
	start := time.Now()
	err := parallel.ForEach(ctx, args.N, args.Dialers, func(i int) error {
		s, err := dialStream(ctx, args.Addr, uint64(i+1))
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		ss[i] = s
		return nil
	})
	r.Elapsed = time.Since(start)
	a.mu.Lock()
	for _, s := range ss {
		if s != nil {
			a.streams = append(a.streams, s)
		}
	}
	a.mu.Unlock()
	return err
}

// StreamReportReply holds each streaming session's figures.
type StreamReportReply struct{ Sessions []StreamResult }

// StreamReport reports on every streaming session.
func (a *Agent) StreamReport(_ struct{}, r *StreamReportReply) error {
	a.mu.Lock()
	ss := a.streams
	a.mu.Unlock()
	for _, s := range ss {
		r.Sessions = append(r.Sessions, s.result())
	}
	return nil
}
