package pool

import "sync"

// goneList collects the sessions that left a draining member (handed over,
// or fenced by a takeover), so that the drain looks at those alone between
// its walks over every move under way: a drain of thousands of sessions
// with a window of hundreds would otherwise walk hundreds of moves for each
// handover. It collects only while a drain watches it.
type goneList struct {
	mu       sync.Mutex
	watching bool
	ids      []sessionID
}

// watch starts (true) or stops collecting; stopping drops what was
// collected.
func (g *goneList) watch(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.watching = on
	g.ids = nil
}

// add notes that id left, if a drain watches.
func (g *goneList) add(id sessionID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.watching {
		g.ids = append(g.ids, id)
	}
}

// take returns the sessions gone since the last take, reusing buf.
func (g *goneList) take(buf []sessionID) []sessionID {
	g.mu.Lock()
	defer g.mu.Unlock()
	buf = append(buf[:0], g.ids...)
	g.ids = g.ids[:0]
	return buf
}
