package msgpackcheck

import (
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzWellFormed: what WellFormed accepts decodes into an interface value
// with allocation in proportion to its length.
func FuzzWellFormed(f *testing.F) {
	f.Add([]byte{0x81, 0xa1, 'a', 0x92, 1, 0xc4, 1, 0})
	f.Add([]byte("\x81\xaa0000000000\xdb\xdd000000"))
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		if WellFormed(in) != nil {
			return
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var v any
		_ = msgpack.Unmarshal(in, &v)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10+256*uint64(len(in)) {
			t.Fatalf("decoding %d accepted bytes allocated %d", len(in), n)
		}
	})
}
