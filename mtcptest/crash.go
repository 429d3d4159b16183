package mtcptest

import (
	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/crashhook"
)

// Crash stops ln the way a crash of its process would: it stops
// listening, its sessions' connections are reset (a TCP reset where the
// links are TCP), nothing is said to clients or to the pool (no leaving,
// no handover, no forgetting of checkpoint copies), and its sessions end,
// their applications' Read and Write failing with mtcp.ErrCrashed.
// Clients of a pool with replicas then resume on other members from the
// copies of their checkpoints, as after a real crash. It is meant for
// tests and demonstrations; servers stop with Close or Drain.
func Crash(ln *mtcp.Listener) { crashhook.Crash(ln) }
