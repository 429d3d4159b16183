package mtcp

// MovePending reports whether a MOVE asked of the session's client has not
// gone out yet (pool.MovePending): its client is away, and gets it on the
// link it comes back on.
func (s poolSession) MovePending() bool {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	ss := c.server
	return !c.ended && ss.moveTo != nil && !ss.moveSent
}
