// Package poolhook lets the module's tests stand between a pool member's
// control plane and its handlers, to make a member slow, refuse or fail
// the way a real one would under load or faults. Nothing sets it outside
// tests; a member then calls its handlers directly (one atomic load per
// request).
package poolhook

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/migratory/mtcp/transport"
)

// Wrap returns the handler a member runs for a request of some kind, given
// the member's own handler h.
type Wrap func(h transport.Handler) transport.Handler

type key struct {
	member any
	kind   string
}

var (
	mu    sync.Mutex
	wraps atomic.Pointer[map[key]Wrap]
)

// Set makes member (the value the member registered its handlers with, its
// *pool.Runtime) run wrap for its requests of kind until the returned function
// is called.
func Set(member any, kind string, wrap Wrap) (undo func()) {
	k := key{member, kind}
	update(func(m map[key]Wrap) { m[k] = wrap })
	return func() { update(func(m map[key]Wrap) { delete(m, k) }) }
}

func update(f func(map[key]Wrap)) {
	mu.Lock()
	defer mu.Unlock()
	next := map[key]Wrap{}
	if cur := wraps.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	f(next)
	wraps.Store(&next)
}

// Handler is h, run through the wrap set for member and kind at the time
// of each request, if any.
func Handler(member any, kind string, h transport.Handler) transport.Handler {
	return func(ctx context.Context, from string, decode func(any) error) (any, error) {
		if m := wraps.Load(); m != nil {
			if w := (*m)[key{member, kind}]; w != nil {
				return w(h)(ctx, from, decode)
			}
		}
		return h(ctx, from, decode)
	}
}

// Hooked reports whether a wrap is set for member's requests of kind: a
// member that runs such requests together, one after the other, runs them
// each on its own while one is.
func Hooked(member any, kind string) bool {
	m := wraps.Load()
	return m != nil && (*m)[key{member, kind}] != nil
}
