package mtcp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migratory/mtcp/internal/poolhook"
	"github.com/migratory/mtcp/transport"
)

// hookControl makes ln's member run wrap around its handler for control
// requests of kind (a pool.Kind*) until the returned function is called or
// the test ends.
func hookControl(t testing.TB, ln *Listener, kind string, wrap poolhook.Wrap) (undo func()) {
	undo = poolhook.Set(ln.member, kind, wrap)
	t.Cleanup(undo)
	return undo
}

// delayFirstControl makes ln's member wait d before it handles its first
// control request of kind; later ones run at once.
func delayFirstControl(t testing.TB, ln *Listener, kind string, d time.Duration) {
	var first atomic.Bool
	hookControl(t, ln, kind, func(h transport.Handler) transport.Handler {
		return func(ctx context.Context, from string, decode func(any) error) (any, error) {
			if first.CompareAndSwap(false, true) {
				time.Sleep(d)
			}
			return h(ctx, from, decode)
		}
	})
}
