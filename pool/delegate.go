package pool

import "github.com/hashicorp/memberlist"

// delegate connects memberlist to the pool: it supplies the local
// metadata and keeps the view of remote members current.
//
// memberlist calls the event methods one at a time while holding its own
// lock, so they must not call back into memberlist, and must not block:
// they update the view and leave OnChange to the pool's goroutine.
type delegate struct {
	p *Pool
}

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
)

// NodeMeta returns the local member's encoded metadata.
func (d *delegate) NodeMeta(limit int) []byte {
	p := d.p
	p.mu.Lock()
	local := p.local
	p.mu.Unlock()
	b, err := encodeMeta(local)
	if err == nil && len(b) > limit {
		err = errBadMeta
	}
	if err != nil {
		// Config and SetLoad keep every field in range, so this is a bug;
		// publishing nothing beats memberlist's panic on oversize.
		p.log.Error("pool: cannot encode local metadata", "err", err)
		return nil
	}
	return b
}

// NotifyMsg ignores user messages: the pool sends none.
func (d *delegate) NotifyMsg([]byte) {}

// GetBroadcasts returns nothing: the pool broadcasts only metadata.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState returns nothing: the pool has no state beyond metadata.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState ignores remote state: the pool has none.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin adds a member that became alive.
func (d *delegate) NotifyJoin(n *memberlist.Node) {
	d.p.noteAlive(n.Name)
	d.p.upsert(n)
}

// NotifyUpdate refreshes a member whose metadata changed.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.p.upsert(n) }

// NotifyLeave removes a member that left or was declared dead.
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	d.p.noteLeft(n)
	d.p.remove(n.Name)
}
