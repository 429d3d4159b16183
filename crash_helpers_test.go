package mtcp

// crash stops a member the way a killed process stops (Listener.Abort).
func (ln *Listener) crash() { ln.Abort() }
