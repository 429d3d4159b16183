package transport

import (
	"log/slog"
	"sync"
	"time"
)

// warnEvery is the least time between two warnings of one kind about
// inbound connections.
const warnEvery = time.Second

// rateLog logs one kind of warning at most once per warnEvery, and the
// others at debug level: a flood of bad connections cannot flood the log.
type rateLog struct {
	mu   sync.Mutex
	next time.Time
	held int // warnings logged at debug level since the last one
}

func (l *rateLog) warn(log *slog.Logger, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if now.Before(l.next) {
		l.held++
		l.mu.Unlock()
		log.Debug(msg, args...)
		return
	}
	held := l.held
	l.held, l.next = 0, now.Add(warnEvery)
	l.mu.Unlock()
	if held > 0 {
		args = append(args[:len(args):len(args)], "like_warnings_at_debug_level", held)
	}
	log.Warn(msg, args...)
}
