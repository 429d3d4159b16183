package pool

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// Members that fail are remembered and joined again now and then, so that
// two sides of a healed partition (each of which declared the other dead)
// become one pool again. Members that leave on purpose are forgotten.

// failedMember is a member declared dead, to reconnect to.
type failedMember struct {
	addr  string
	since time.Time
}

// reconnectFor is how long a failed member is tried again.
const reconnectFor = 24 * time.Hour

// noteLeft records a member that went away: forgotten if it left, kept for
// reconnection if it failed.
func (p *Pool) noteLeft(n *memberlist.Node) {
	if n.Name == p.name {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n.State == memberlist.StateLeft {
		delete(p.failed, n.Name)
		return
	}
	p.failed[n.Name] = failedMember{addr: n.Address(), since: time.Now()}
}

// noteAlive forgets a failed member that is back.
func (p *Pool) noteAlive(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.failed, name)
}

// reconnectLoop joins failed members again, a few at a time.
func (p *Pool) reconnectLoop() {
	every(&p.wg, p.done, p.timings.reconnectEvery, p.reconnect)
}

// reconnect joins up to three failed members again, forgetting those
// that failed longer than reconnectFor ago.
func (p *Pool) reconnect() {
	var addrs []string
	p.mu.Lock()
	for name, f := range p.failed {
		if time.Since(f.since) > reconnectFor {
			delete(p.failed, name)
			continue
		}
		if _, alive := p.remote[name]; !alive && len(addrs) < 3 {
			addrs = append(addrs, f.addr)
		}
	}
	p.mu.Unlock()
	if len(addrs) == 0 || p.closed.Load() {
		return
	}
	if n, err := p.ml.Join(addrs); n > 0 {
		p.log.Info("pool: reconnected to failed members", "contacted", n)
	} else if err != nil {
		p.log.Debug("pool: reconnecting to failed members", "addrs", addrs, "err", err)
	}
}
