package mtcp

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp/snapshot"

	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/pool"
	"github.com/migratory/mtcp/transport"
)

// ErrNoPoolKey: a pool member needs Config.PoolKey (at least 16 bytes).
var ErrNoPoolKey = errors.New("mtcp: a pool needs Config.PoolKey of at least 16 bytes")

// node is a Listener's membership in a pool: gossip, the server-to-server
// control plane, and what members know of each other's sessions.
type node struct {
	ln       *Listener
	name     string
	addr     string // where clients reach this member
	replicas int
	pool     *pool.Pool
	ctl      *transport.Server
	rpc      *transport.Client

	version atomic.Uint64   // bumped when the MEMBERS frame changes
	started atomic.Bool     // n.pool is set
	traffic atomic.Uint64   // bytes its sessions received and wrote, in all
	store   *snapshot.Store // checkpoints this member keeps for others' sessions
	atRisk  atomic.Int64    // sessions that a crash of this member would lose (crashsafe.go)

	riskWarn logLimit // sessions at risk are reported once per interval

	mu         sync.Mutex
	membersVer uint64 // the version of members
	members    []byte // the MEMBERS frame the clients are sent
	moved      map[[wire.SessionIDLen]byte]*tombstone
	swept      time.Time // when expired tombstones were last removed
	topology   uint64    // the pool's Topology when changed last ran

	stop    chan struct{}
	wg      sync.WaitGroup
	closing bool // guarded by mu: no new background work
}

// background runs f in a goroutine that close waits for, unless the node
// is closing.
func (n *node) background(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

func startNode(ln *Listener, cfg *Config) (*node, error) {
	if len(cfg.PoolKey) < pool.MinKeyLen {
		return nil, ErrNoPoolKey
	}
	addr := cfg.Advertise
	if addr == "" {
		addr = ln.inner.Addr().String()
	}
	name := cfg.NodeName
	if name == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(addr)
		name = host + ":" + port
	}
	n := &node{ln: ln, name: name, addr: addr, replicas: cfg.Replicas,
		moved: make(map[[wire.SessionIDLen]byte]*tombstone), stop: make(chan struct{}),
		store: snapshot.NewStore(replicaKeep, cfg.ReplicaMemory)}
	n.version.Store(1)
	n.riskWarn.every = 10 * time.Second

	control := cfg.Control
	if control == "" {
		host, _, err := net.SplitHostPort(cfg.Gossip)
		if err != nil {
			return nil, fmt.Errorf("mtcp: gossip address %q: %w", cfg.Gossip, err)
		}
		control = net.JoinHostPort(host, "0")
	}
	ctlLn, err := net.Listen("tcp", control)
	if err != nil {
		return nil, fmt.Errorf("mtcp: control plane: %w", err)
	}
	tcfg := transport.Config{NodeName: name, Key: cfg.PoolKey, Logger: cfg.Logger}
	if n.ctl, err = transport.NewServer(ctlLn, tcfg); err != nil {
		ctlLn.Close()
		return nil, fmt.Errorf("mtcp: control plane: %w", err)
	}
	if n.rpc, err = transport.NewClient(tcfg); err != nil {
		n.ctl.Close()
		return nil, fmt.Errorf("mtcp: control plane: %w", err)
	}
	n.registerHandlers()
	n.registerReplicaHandlers()
	n.pool, err = pool.New(pool.Config{
		NodeName: name, BindAddr: cfg.Gossip, Join: cfg.Join, Key: cfg.PoolKey,
		ClientAddr: addr, ControlAddr: ctlLn.Addr().String(),
		Logger: cfg.Logger, Profile: cfg.PoolProfile, OnChange: n.changed,
	})
	if err != nil {
		n.ctl.Close()
		n.rpc.Close()
		return nil, fmt.Errorf("mtcp: pool: %w", err)
	}
	n.refreshMembers()
	n.started.Store(true)
	if cfg.Replicas == 0 {
		ln.log.Info("mtcp: pool member without checkpoint replicas: sessions move only while their server lives")
	}
	n.wg.Add(2)
	go n.reportLoad()
	go n.sweepReplicas(time.Minute, 2*cfg.DetachTimeout)
	if cfg.Balance != nil {
		n.wg.Add(1)
		go n.balance(cfg.Balance.withDefaults())
	}
	ln.log.Info("mtcp: joined pool", "node", name, "gossip", n.pool.GossipAddr(), "control", ctlLn.Addr().String())
	return n, nil
}

// close leaves the pool and stops the control plane.
func (n *node) close() {
	n.mu.Lock()
	n.closing = true
	n.mu.Unlock()
	close(n.stop)
	n.wg.Wait()
	_ = n.pool.Leave(time.Second)
	_ = n.pool.Shutdown()
	_ = n.ctl.Close()
	_ = n.rpc.Close()
}

// changed runs when the membership or a member's metadata changed: every
// attached session sends its client the new member list. When more than
// the load changed (a member came, went, died and came back, or drains),
// the sessions' replica sets may have changed too: each copies its
// checkpoints to whoever holds them now.
func (n *node) changed() {
	if !n.started.Load() {
		return // the pool is still starting: no session yet
	}
	news := n.refreshMembers()
	topology := n.pool.Topology()
	n.mu.Lock()
	replace := topology != n.topology
	n.topology = topology
	n.mu.Unlock()
	if !news && !replace {
		return
	}
	for _, c := range n.ln.sessionList() {
		c.mu.Lock()
		if news && c.link != nil {
			c.link.kickNow()
		}
		if replace {
			c.server.repl.membersChanged()
			c.replicateLocked()
		}
		c.mu.Unlock()
	}
}

// reportLoad publishes this member's load once a second: its sessions,
// and the bytes per second its sessions read and wrote.
func (n *node) reportLoad() {
	defer n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, at := n.traffic.Load(), time.Now()
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			total := n.traffic.Load()
			rate := float64(total-last) / now.Sub(at).Seconds()
			last, at = total, now
			n.pool.SetLoad(n.ln.Sessions(), uint64(rate))
		}
	}
}

// refreshMembers rebuilds the MEMBERS frame from the pool; it reports
// whether the frame changed (a new version for the clients), which load
// figures the clients are not shown do not do.
func (n *node) refreshMembers() bool {
	list := n.pool.Members()
	f := wire.Members{List: make([]wire.MemberInfo, 0, len(list))}
	for _, m := range list {
		f.List = append(f.List, wire.MemberInfo{
			Name: m.Name, Addr: m.ClientAddr, Sessions: uint32(min(uint64(max(m.Sessions, 0)), math.MaxUint32)), Draining: m.Draining,
		})
	}
	b := wire.AppendFrame(nil, f)
	n.mu.Lock()
	defer n.mu.Unlock()
	if bytes.Equal(b, n.members) {
		return false
	}
	n.members, n.membersVer = b, n.version.Add(1)
	return true
}

// membersFrame returns the encoded MEMBERS frame of the current membership
// and its version.
func (n *node) membersFrame() ([]byte, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.members, n.membersVer
}

// Members returns the pool's members as this listener sees them (nil for a
// standalone listener).
func (ln *Listener) Members() []Member {
	if ln.node == nil {
		return nil
	}
	list := ln.node.pool.Members()
	out := make([]Member, 0, len(list))
	for _, m := range list {
		out = append(out, Member{Name: m.Name, Addr: m.ClientAddr, Sessions: m.Sessions, Draining: m.Draining})
	}
	return out
}

// NodeName returns the listener's name in its pool ("" when standalone).
func (ln *Listener) NodeName() string {
	if ln.node == nil {
		return ""
	}
	return ln.node.name
}

// Member is a pool member as clients and servers see it.
type Member struct {
	Name     string // unique name in the pool
	Addr     string // where clients connect
	Sessions int    // sessions it holds
	Draining bool   // leaving the pool: takes no sessions
}

func (m Member) String() string {
	d := ""
	if m.Draining {
		d = " draining"
	}
	return m.Name + "@" + m.Addr + " (" + strconv.Itoa(m.Sessions) + " sessions" + d + ")"
}

// target resolves where a session should move: the member with client
// address to, or the least loaded other member when to is empty.
func (n *node) target(to string) (pool.Member, error) {
	if to == "" {
		m, ok := n.pool.LeastLoaded(n.name)
		if !ok {
			return m, ErrNoMember
		}
		return m, nil
	}
	m, ok := n.pool.ByClientAddr(to)
	switch {
	case !ok:
		return m, fmt.Errorf("%w: %q", ErrUnknownMember, to)
	case m.Draining:
		return m, fmt.Errorf("%w: %s", ErrMemberDraining, m.Name)
	case m.Name == n.name:
		return m, fmt.Errorf("%w: %s is this member", ErrNoMember, m.Name)
	}
	return m, nil
}

// GossipAddr returns the address the pool's gossip is bound to ("" when
// standalone): what other members list in Config.Join.
func (ln *Listener) GossipAddr() string {
	if ln.node == nil {
		return ""
	}
	return ln.node.pool.GossipAddr()
}
