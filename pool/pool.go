package pool

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Pool is this member's membership in a pool: its own published metadata
// and its view of the other members. Its methods are safe for concurrent
// use.
type Pool struct {
	log        *slog.Logger
	onChange   func()
	timings    timings
	ml         *memberlist.Memberlist
	gossipAddr string
	name       string // the local member's name, fixed

	mu     sync.Mutex
	local  Member                  // what this member publishes
	remote map[string]Member       // alive remote members with readable metadata
	failed map[string]failedMember // members declared dead, to reconnect to
	gone   map[string]goneMember   // members that left the view, as they were last seen
	joins  map[string]uint64       // the join each remote member is in (see Placement)
	// sorted holds the members, the local one included, sorted by Name
	// (nil once they change, until next asked for): copy rounds ask
	// for them by the thousand a second.
	sorted []Member

	updateMu sync.Mutex // serialises memberlist.UpdateNode calls
	lifeMu   sync.Mutex // serialises Leave and Shutdown
	closed   atomic.Bool
	left     atomic.Bool

	topology  atomic.Uint64 // counts changes of who is in the pool and who takes sessions
	joinSeq   atomic.Uint64 // numbers the joins (see Placement)
	changed   chan struct{} // a change for OnChange; capacity 1
	loadDirty chan struct{} // load waiting to be gossiped; capacity 1
	done      chan struct{} // closed by Shutdown
	wg        sync.WaitGroup
}

// New starts gossip, publishes the local member's metadata and joins the
// members in cfg.Join, if any.
func New(cfg Config) (*Pool, error) {
	mc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, err
	}
	p := &Pool{
		log:      cfg.Logger,
		onChange: cfg.OnChange,
		timings:  cfg.Profile.timings(),
		name:     cfg.NodeName,
		local: Member{
			Name:        cfg.NodeName,
			ClientAddr:  cfg.ClientAddr,
			ControlAddr: cfg.ControlAddr,
			// A member started again under its name is told apart from
			// the one before (its copies are gone).
			Boot: rand.Uint64() | 1,
		},
		remote:    make(map[string]Member),
		joins:     make(map[string]uint64),
		gone:      make(map[string]goneMember),
		failed:    make(map[string]failedMember),
		changed:   make(chan struct{}, 1),
		loadDirty: make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	d := &delegate{p: p}
	mc.Delegate = d
	mc.Events = d

	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("pool: start gossip: %w", err)
	}
	p.ml = ml
	p.gossipAddr = ml.LocalNode().Address()
	p.wg.Add(3)
	go p.notifyLoop()
	go p.loadLoop()
	go p.reconnectLoop()

	if len(cfg.Join) > 0 {
		n, err := ml.Join(cfg.Join)
		if err != nil {
			_ = p.Shutdown()
			// memberlist lists each address's failure on lines of its own.
			return nil, fmt.Errorf("pool: join %v: %s", cfg.Join, strings.Join(strings.Fields(err.Error()), " "))
		}
		p.log.Debug("pool: joined", "member", cfg.NodeName, "contacted", n)
	}
	p.log.Debug("pool: started", "member", cfg.NodeName, "gossip", p.gossipAddr, "profile", cfg.Profile.String())
	return p, nil
}

// Local returns the local member as it publishes itself.
func (p *Pool) Local() Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.local
}

// Members returns the alive members, the local one included, sorted by
// Name. A member that stopped answering stays until the failure detector
// declares it dead. After Shutdown only the local member remains.
func (p *Pool) Members() []Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sortedLocked())
}

// sortedLocked (p.mu held) returns the members sorted by Name, which the
// caller must not change.
func (p *Pool) sortedLocked() []Member {
	if p.sorted == nil {
		out := make([]Member, 0, len(p.remote)+1)
		out = append(out, p.local)
		for _, m := range p.remote {
			out = append(out, m)
		}
		slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
		p.sorted = out
	}
	return p.sorted
}

// Member returns the alive member called name.
func (p *Pool) Member(name string) (Member, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if name == p.name {
		return p.local, true
	}
	m, ok := p.remote[name]
	return m, ok
}

// ByClientAddr returns the alive member whose ClientAddr is addr.
func (p *Pool) ByClientAddr(addr string) (Member, bool) {
	if addr == "" {
		return Member{}, false
	}
	for _, m := range p.Members() {
		if m.ClientAddr == addr {
			return m, true
		}
	}
	return Member{}, false
}

// GossipAddr returns the host:port other members join this one at: the
// advertised address, with the port actually bound.
func (p *Pool) GossipAddr() string { return p.gossipAddr }

// Leave tells the other members that this one is leaving, waiting up to
// timeout for the news to go out (a timeout of 0 or less waits a default
// set by the profile). Gossip keeps running until Shutdown, which should
// follow.
func (p *Pool) Leave(timeout time.Duration) error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	if timeout <= 0 {
		timeout = p.timings.updateWait
	}
	p.left.Store(true)
	if err := p.ml.Leave(timeout); err != nil {
		return fmt.Errorf("pool: leave: %w", err)
	}
	return nil
}

// Shutdown stops gossip at once, without telling the others (call Leave
// first for that): they will see this member fail. It waits for the pool's
// goroutines, including a running OnChange. Calling it again does nothing.
func (p *Pool) Shutdown() error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	if p.closed.Swap(true) {
		return nil
	}
	err := p.ml.Shutdown()
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	clear(p.remote)
	p.sorted = nil
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("pool: shutdown: %w", err)
	}
	return nil
}
