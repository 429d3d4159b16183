package pool

import "github.com/hashicorp/memberlist"

// upsert records an alive remote member from its gossiped node. A member
// whose metadata cannot be read is logged and left out of the view.
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
	p.mu.Unlock()
	if !had || old.withoutLoad() != m.withoutLoad() {
		p.topology.Add(1)
	}
	if !had || old != m {
		p.changedNow()
	}
}

// remove drops a remote member from the view.
func (p *Pool) remove(name string) {
	if p.closed.Load() || name == p.name {
		return
	}
	p.mu.Lock()
	_, had := p.remote[name]
	delete(p.remote, name)
	p.mu.Unlock()
	if had {
		p.topology.Add(1)
		p.changedNow()
	}
}
