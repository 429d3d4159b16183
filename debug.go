package mtcp

import "fmt"

// debugState describes the session's state, for test failures and logs.
func (c *Conn) debugState() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	from, to := st.Retained()
	urgent, dirty := st.AckDue()
	loops := int32(-1) // no link
	if c.link != nil {
		loops = c.link.loops.Load()
	}
	return fmt.Sprintf("role=%v closed=%v terminated=%v err=%v link=%v holder=%d appWants=%v bgStarts=%d sendLoops=%d "+
		"out[retained %d..%d sent %d end %d outputDone=%v canSend=%v] in[consumed %d received %d peerEnd %d] ack[urgent %v dirty %v] finished=%v",
		c.role, c.closed, c.ended, c.err, c.link != nil, c.holder, c.appWants, c.bgStarts, loops,
		from, to, st.Sent(), st.OutputEnd(), st.OutputDone(), st.CanSend(),
		st.Consumed(), st.Received(), st.PeerEnd(), urgent, dirty, c.finishedLocked())
}
