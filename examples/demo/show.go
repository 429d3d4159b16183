package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/migratory/mtcp"
)

// event is something the client's mtcp log said.
type event struct {
	at    time.Time
	msg   string
	attrs map[string]string
}

// eventHandler turns the client's mtcp log records into events.
type eventHandler struct {
	events chan event
	attrs  []slog.Attr
}

func (h *eventHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &eventHandler{events: h.events, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}
func (h *eventHandler) WithGroup(string) slog.Handler { return h }
func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	ev := event{at: r.Time, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		ev.attrs[a.Key] = a.Value.String()
		return true
	})
	select {
	case h.events <- ev:
	default:
	}
	return nil
}

// teeHandler sends records to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (t *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}
func (t *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	_ = t.a.Handle(ctx, r)
	if t.b.Enabled(ctx, r.Level) {
		_ = t.b.Handle(ctx, r)
	}
	return nil
}
func (t *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}
func (t *teeHandler) WithGroup(g string) slog.Handler {
	return &teeHandler{t.a.WithGroup(g), t.b.WithGroup(g)}
}

// progress prints a live progress line and a line for each move.
type progress struct {
	c     *mtcp.Conn
	size  int64
	start time.Time

	tty     bool // stdout is a terminal: redraw one progress line
	lines   int  // progress lines printed (not on a terminal)
	mu      sync.Mutex
	got     int64
	cause   string // what the demo just did to the pool
	moves   []string
	stop    chan struct{}
	stopped chan struct{}
}

func newProgress(c *mtcp.Conn, size int64, events chan event) *progress {
	p := &progress{c: c, size: size, start: time.Now(), stop: make(chan struct{}), stopped: make(chan struct{})}
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		p.tty = true
	}
	go p.loop(events)
	return p
}

func (p *progress) update(n int64) {
	p.mu.Lock()
	p.got = n
	p.mu.Unlock()
}

// because notes what the demo did, for the next move line.
func (p *progress) because(cause string) {
	p.mu.Lock()
	p.cause = cause
	p.mu.Unlock()
	p.println(fmt.Sprintf("[%5.1fs] %s", time.Since(p.start).Seconds(), cause))
}

func (p *progress) println(s string) {
	if p.tty {
		fmt.Printf("\r\033[K  %s\n", s)
		return
	}
	fmt.Printf("  %s\n", s)
}

func (p *progress) loop(events chan event) {
	defer close(p.stopped)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var last int64
	lastAt := time.Now()
	for {
		select {
		case <-p.stop:
			return
		case ev := <-events:
			p.event(ev)
		case <-t.C:
			p.line(&last, &lastAt)
		}
	}
}

func (p *progress) line(last *int64, lastAt *time.Time) {
	p.mu.Lock()
	got := p.got
	p.mu.Unlock()
	rate := float64(got-*last) / time.Since(*lastAt).Seconds() / (1 << 20)
	*last, *lastAt = got, time.Now()
	text := fmt.Sprintf("%6.1f / %d MiB  %5.1f MiB/s  served by %s", float64(got)/(1<<20), p.size>>20, rate, p.c.MemberName())
	if p.tty {
		fmt.Printf("\r\033[K  %s", text)
		return
	}
	if p.lines++; p.lines%8 == 0 { // every 2 s
		fmt.Printf("  [%5.1fs] %s\n", time.Since(p.start).Seconds(), text)
	}
}

// event prints a move, with its pause as the client measured it.
func (p *progress) event(ev event) {
	a := ev.attrs
	at := fmt.Sprintf("[%5.1fs]", ev.at.Sub(p.start).Seconds())
	var line string
	switch ev.msg {
	case "mtcp: session moved":
		line = fmt.Sprintf("%s session moved %s -> %s, pause %s", at, a["from"], a["to"], short(a["pause"]))
	case "mtcp: session resumed":
		line = fmt.Sprintf("%s session resumed on %s (restored from a replica), pause %s since the link broke", at, p.c.MemberName(), short(a["after"]))
	case "mtcp: policy moved the session":
		line = fmt.Sprintf("%s the client's policy moved it: throughput had dropped to %s/s against %s/s", at, mib(a["rate"]), mib(a["baseline"]))
	case "mtcp: server asks the session to move":
		line = fmt.Sprintf("%s the server asks the session to move to %s", at, a["to"])
	case "mtcp: link lost":
		line = fmt.Sprintf("%s link lost: %s", at, a["cause"])
	default:
		return
	}
	p.mu.Lock()
	if strings.Contains(line, "pause") {
		p.moves = append(p.moves, strings.TrimSpace(line[len(at):]))
	}
	p.mu.Unlock()
	p.println(line)
}

func (p *progress) done() {
	close(p.stop)
	<-p.stopped
	if p.tty {
		fmt.Printf("\r\033[K")
	}
}

func short(d string) string {
	v, err := time.ParseDuration(d)
	if err != nil {
		return d
	}
	return v.Round(10 * time.Microsecond).String()
}

func mib(s string) string {
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil {
		return s
	}
	return fmt.Sprintf("%.1f MiB", v/(1<<20))
}
