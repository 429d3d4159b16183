package pool

// Member is one server of the pool as the pool sees it.
type Member struct {
	Name        string // unique node name
	ClientAddr  string // host:port where mtcp clients connect
	ControlAddr string // host:port of the server-to-server control plane
	Sessions    int    // sessions held (load)
	BytesPerSec uint64 // recent client traffic of the sessions it holds (load)
	Draining    bool   // leaving: takes no new sessions or migrations
}

// eligible reports whether m may take new sessions, migrations or replicas.
func (m Member) eligible() bool { return !m.Draining }

// withoutLoad is m with its load figures zeroed, to compare what else changed.
func (m Member) withoutLoad() Member {
	m.Sessions, m.BytesPerSec = 0, 0
	return m
}
