package stream

import (
	"sync"
)

// ChunkSize is the unit in which a Stream's buffers take and give back
// memory: a ring holds the chunks its bytes need, and gives each back as
// soon as it is empty, so an idle session holds none.
const ChunkSize = 16 << 10

type chunk [ChunkSize]byte

var chunks = sync.Pool{New: func() any { return new(chunk) }}

// Memory is a budget that a Stream's buffers draw their chunks from (nil:
// no limit). It is shared by many streams and must be safe for concurrent
// use.
type Memory interface {
	// Take asks for n bytes. With must, the bytes are needed whatever the
	// budget says (input the peer was allowed to send) and Take only counts
	// them; otherwise it reports false, and counts nothing, when the budget
	// is spent.
	Take(n int, must bool) bool
	// Give returns n bytes taken before.
	Give(n int)
}
