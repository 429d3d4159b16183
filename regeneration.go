package mtcp

import (
	"fmt"
	"time"
)

// regenGrace is how long a restored application may go without
// regenerating anything once it has read all the input its client had sent
// before the restore. A deterministic application has by then written
// everything the client received; one that stays short never catches up,
// and waiting would hang both ends (the client waits for an answer the
// server holds back until the regenerated output checks out).
const regenGrace = 3 * time.Second

// watchRegeneration (c.mu held) checks, until the regenerated output is
// verified, that the restored application either has input left to read
// or makes progress; replayEnd is the end of the client's input at the
// restore.
func (c *Conn) watchRegeneration(replayEnd uint64) {
	const tick = regenGrace / 6
	var (
		stalled bool // starved, with no progress since stalledAt
		since   time.Time
		at      uint64
		check   func()
	)
	check = func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		s := c.server
		if c.ended || !s.verifyPending || !c.st.Regenerating() {
			return
		}
		written := c.st.Written()
		starved := c.st.Consumed() >= replayEnd && c.st.Buffered() == 0
		switch {
		case !starved || !stalled || written != at:
			stalled, since, at = starved, time.Now(), written
		case time.Since(since) >= regenGrace:
			from, to, _, _ := c.st.RegeneratedDigest()
			c.abortLocked(fmt.Errorf("%w: the restored application read all the input the client had sent and "+
				"regenerated only %d of the %d bytes the client received after the checkpoint",
				ErrDiverged, written-from, to-from))
			return
		}
		time.AfterFunc(tick, check)
	}
	time.AfterFunc(tick, check)
}
