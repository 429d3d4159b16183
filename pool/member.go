package pool

// Member is one member of the pool (one Listener), as the pool sees it.
type Member struct {
	Name        string // unique member name
	ClientAddr  string // host:port where mtcp clients connect
	ControlAddr string // host:port of the control plane between members
	Sessions    int    // sessions held (load)
	BytesPerSec uint64 // recent client traffic of the sessions it holds (load)
	Draining    bool   // leaving: takes no new sessions or moves
	Boot        uint64 // chosen at random each time the member starts (0: not published)
}

// eligible reports whether m may take new sessions, moved ones or copies.
func (m Member) eligible() bool { return !m.Draining }

// withoutLoad is m with its load figures zeroed, to compare what else changed.
func (m Member) withoutLoad() Member {
	m.Sessions, m.BytesPerSec = 0, 0
	return m
}
