package pool

import "time"

// noteFled records that a session left the member called from for this
// one: the balancer sends none back there for a while.
func (n *Runtime) noteFled(from string) {
	n.fledMu.Lock()
	defer n.fledMu.Unlock()
	if n.fled == nil {
		n.fled = make(map[string]time.Time)
	}
	n.fled[from] = time.Now()
}

// fledFrom returns the members whose sessions came here within the last
// hold.
func (n *Runtime) fledFrom(hold time.Duration) map[string]bool {
	n.fledMu.Lock()
	defer n.fledMu.Unlock()
	out := make(map[string]bool)
	for name, at := range n.fled {
		if time.Since(at) < hold {
			out[name] = true
		} else {
			delete(n.fled, name)
		}
	}
	return out
}
