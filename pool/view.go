package pool

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// upsert records an alive remote member from its gossiped memberlist.Node.
// A member whose metadata cannot be read is logged and left out of the view.
func (p *Pool) upsert(n *memberlist.Node) {
	if p.closed.Load() || n.Name == p.name {
		return
	}
	m, err := decodeMeta(n.Meta)
	if err != nil {
		p.log.Warn("pool: ignoring member with unreadable metadata",
			"member", n.Name, "addr", n.Address(), "err", err)
		p.remove(n.Name)
		return
	}
	m.Name = n.Name
	p.mu.Lock()
	if p.closed.Load() {
		// Shutdown empties the view under p.mu after setting closed.
		p.mu.Unlock()
		return
	}
	old, had := p.remote[m.Name]
	p.remote[m.Name] = m
	p.sorted = nil
	if !had || old.ClientAddr != m.ClientAddr || old.ControlAddr != m.ControlAddr || old.Boot != m.Boot {
		// Back after leaving the view, or elsewhere, or started again
		// (before it was seen to leave): a new join, whose store of
		// copies may be empty.
		p.joins[m.Name] = p.joinSeq.Add(1)
	}
	p.mu.Unlock()
	if !had || old.withoutLoad() != m.withoutLoad() {
		p.topology.Add(1)
	}
	if !had || old != m {
		p.changedNow()
	}
}

// goneMember is a member that left the view, as it was last seen.
type goneMember struct {
	m  Member
	at time.Time
}

// maxGone bounds the members remembered gone.
const maxGone = 64

// noteGoneLocked remembers m, which left the view (p.mu held).
func (p *Pool) noteGoneLocked(m Member) {
	if len(p.gone) >= maxGone {
		oldest := ""
		for name, g := range p.gone {
			if oldest == "" || g.at.Before(p.gone[oldest].at) {
				oldest = name
			}
		}
		delete(p.gone, oldest)
	}
	p.gone[m.Name] = goneMember{m, time.Now()}
}

// Gone returns the member called name as it was last seen in the view, if
// it left the view within the last while (and is not back).
func (p *Pool) Gone(name string, within time.Duration) (Member, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, back := p.remote[name]; back {
		return Member{}, false
	}
	g, ok := p.gone[name]
	if !ok || time.Since(g.at) > within {
		return Member{}, false
	}
	return g.m, true
}

// remove drops a remote member from the view.
func (p *Pool) remove(name string) {
	if p.closed.Load() || name == p.name {
		return
	}
	p.mu.Lock()
	m, had := p.remote[name]
	delete(p.remote, name)
	p.sorted = nil
	if had {
		p.noteGoneLocked(m)
	}
	p.mu.Unlock()
	if had {
		p.topology.Add(1)
		p.changedNow()
	}
}
