package mtcp

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp/internal/stream"
	"github.com/migratory/mtcp/internal/wire"
)

// memBudget is a listener's budget for its sessions' buffers
// (Config.SessionMemory): the chunks of input and retained output they hold.
// Output that would pass it waits (the application's Write blocks) while the
// listener evicts detached sessions to make room, the largest first.
type memBudget struct {
	limit int64 // < 0: none
	used  atomic.Int64

	pressure chan struct{} // capacity 1: the evictor should look

	mu      sync.Mutex
	waiting chan struct{} // closed when memory is given back; nil without waiters
	hasWait atomic.Bool
}

func newMemBudget(limit int) *memBudget {
	return &memBudget{limit: int64(limit), pressure: make(chan struct{}, 1)}
}

// Take implements stream.Memory.
func (b *memBudget) Take(n int, must bool) bool {
	if b.limit < 0 {
		b.used.Add(int64(n))
		return true
	}
	for {
		used := b.used.Load()
		if used+int64(n) > b.limit {
			signal(b.pressure)
			if !must {
				return false
			}
		}
		if b.used.CompareAndSwap(used, used+int64(n)) {
			return true
		}
	}
}

// Give implements stream.Memory.
func (b *memBudget) Give(n int) {
	b.used.Add(-int64(n))
	if b.hasWait.Load() {
		b.mu.Lock()
		if b.waiting != nil {
			close(b.waiting)
			b.waiting = nil
			b.hasWait.Store(false)
		}
		b.mu.Unlock()
	}
}

// wait returns a channel closed the next time memory is given back.
func (b *memBudget) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waiting == nil {
		b.waiting = make(chan struct{})
		b.hasWait.Store(true)
	}
	return b.waiting
}

// over reports whether the budget is spent, with a margin of a sixteenth so
// that evicting frees room for more than one chunk.
func (b *memBudget) over() bool {
	return b.limit >= 0 && b.used.Load() > b.limit-b.limit/16
}

var _ stream.Memory = (*memBudget)(nil)

// evictLoop evicts detached sessions when the budget is under pressure.
func (ln *Listener) evictLoop() {
	defer ln.wg.Done()
	for {
		select {
		case <-ln.closed:
			return
		case <-ln.mem.pressure:
			ln.evict()
		}
	}
}

// evict ends detached sessions, those holding the most memory first (then
// those detached the longest), until the budget has room again. Attached
// sessions are never evicted: their writers wait instead.
func (ln *Listener) evict() {
	if !ln.mem.over() {
		return
	}
	type victim struct {
		c     *Conn
		held  int
		since time.Time
	}
	var vs []victim
	for _, c := range ln.sessionList() {
		c.mu.Lock()
		if c.link == nil && !c.ended {
			vs = append(vs, victim{c, c.st.Held(), c.server.detachedAt})
		}
		c.mu.Unlock()
	}
	slices.SortFunc(vs, func(a, b victim) int {
		return cmp.Or(cmp.Compare(b.held, a.held), a.since.Compare(b.since))
	})
	evicted := 0
	for _, v := range vs {
		if !ln.mem.over() {
			break
		}
		c := v.c
		c.mu.Lock()
		if c.link == nil && !c.ended {
			ln.noteEvicted(c.id)
			c.failLocked(fmt.Errorf("%w (%d bytes of buffers, the listener's SessionMemory of %d bytes is spent)",
				ErrEvicted, v.held, ln.mem.limit))
			evicted++
		}
		c.mu.Unlock()
	}
	if evicted > 0 {
		total := ln.evictedTotal.Add(int64(evicted))
		if ln.evictWarn.allow() {
			ln.log.Warn("mtcp: detached sessions dropped to stay within SessionMemory",
				"dropped", evicted, "in all", total, "limit", ln.mem.limit)
		}
	}
}

// evictedRemembered bounds how many dropped sessions a listener remembers, to tell
// their clients why the session is gone.
const evictedRemembered = 1 << 16

// evictedRecord remembers the sessions the listener dropped for memory, for a
// while, so that a client that comes back learns why (ErrEvicted) rather
// than that its session is unknown.
type evictedRecord struct {
	mu    sync.Mutex
	ids   map[[wire.SessionIDLen]byte]time.Time
	order [][wire.SessionIDLen]byte // oldest first
}

func (ln *Listener) noteEvicted(id [wire.SessionIDLen]byte) {
	r := &ln.evictedIDs
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = make(map[[wire.SessionIDLen]byte]time.Time)
	}
	if len(r.order) >= evictedRemembered {
		delete(r.ids, r.order[0])
		r.order = r.order[1:]
	}
	r.ids[id] = time.Now()
	r.order = append(r.order, id)
}

// wasEvicted reports whether the listener dropped the session for memory
// within the detach timeout.
func (ln *Listener) wasEvicted(id [wire.SessionIDLen]byte) bool {
	r := &ln.evictedIDs
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.ids[id]
	return ok && time.Since(at) < ln.cfg.DetachTimeout
}
