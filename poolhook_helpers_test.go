package mtcp

import (
	"testing"

	"github.com/migratory/mtcp/internal/poolhook"
)

// hookControl makes ln's member run wrap around its handler for control
// requests of kind (a pool.Kind*) until the returned function is called or
// the test ends.
func hookControl(t testing.TB, ln *Listener, kind string, wrap poolhook.Wrap) (undo func()) {
	undo = poolhook.Set(ln.member, kind, wrap)
	t.Cleanup(undo)
	return undo
}
