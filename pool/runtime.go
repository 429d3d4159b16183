package pool

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp/internal/crashhook"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
	"github.com/migratory/mtcp/transport"
)

// RuntimeConfig configures a Runtime. Package mtcp fills it from its Config.
type RuntimeConfig struct {
	Name       string       // the member's unique name
	ClientAddr string       // where clients reach the member
	Gossip     string       // ip:port gossip binds (port 0 picks one)
	Join       []string     // gossip addresses of members to join
	Key        []byte       // the pool key (at least MinKeyLen bytes)
	Control    string       // ip:port of the control plane (port 0 picks one)
	Replicas   int          // copies of each checkpoint on other members (0: none)
	Profile    Profile      // gossip and failure-detection timings
	Logger     *slog.Logger // where the member logs (nil: nowhere)

	// HandshakeTimeout bounds a takeover's calls to other members, and how
	// long a handed-over session's answer is kept for its successor.
	HandshakeTimeout time.Duration
	// DetachTimeout: copies of sessions nobody updated for twice as long
	// are dropped (their member and client are gone).
	DetachTimeout time.Duration
	// ReplicaMemory bounds the application state kept in copies of other
	// members' checkpoints; ReplicaKeep the copies kept per session.
	ReplicaMemory int
	ReplicaKeep   int
	// Balance, if set, makes the member shed sessions when it holds more
	// than its share.
	Balance *Balance
	// DrainWindow bounds the moves a drain has under way at once (0:
	// DefaultDrainWindow); within it the window adapts to how long the
	// moves take.
	DrainWindow int
}

// Runtime is a listener's part in a pool: its membership (gossip), the
// control plane between members, the copies it keeps of other members'
// checkpoints, and the coordination of moves: handovers, takeovers,
// failovers, fencing, replication, drains and balancing. It reaches the
// listener's sessions only through Host and Session. Package mtcp starts
// one for a Listener in a pool; applications use mtcp.Listener.
type Runtime struct {
	cfg      RuntimeConfig
	host     Host
	log      *slog.Logger
	name     string
	replicas int
	members  *Pool
	ctl      *transport.Server
	rpc      *transport.Client
	store    *snapshot.Store
	tombs    tombstones

	version atomic.Uint64 // bumped when the MEMBERS frame changes
	started atomic.Bool   // members is set
	traffic atomic.Uint64 // bytes its sessions received and wrote, in all
	held    atomic.Uint64 // session-milliseconds its sessions were held, in all (counted every loadSample)
	moved   chan struct{} // a session was handed over or its handover settled; capacity 1
	gone    goneList      // sessions handed over or fenced, while a drain looks
	rounds  *warm         // the goroutines copy rounds run on

	batches  handoverBatches              // handover requests to other members, gathered per member
	calls    callBatches                  // other requests to other members, gathered per member
	handlers map[string]transport.Handler // by kind, as the control plane runs them (set before it serves)

	fledMu sync.Mutex
	fled   map[string]time.Time // members whose sessions came here, and when last

	mu         sync.Mutex
	membersVer uint64            // the version of frame
	frame      []byte            // the MEMBERS frame the clients are sent
	shape      []byte            // the MEMBERS frame without session counts and rates
	shown      map[string]uint64 // the rate of each member that frame shows (shownRate)
	topology   uint64            // the pool's Topology when changed last ran
	closing    bool              // no new background work

	stop     chan struct{}
	stopOnce sync.Once
	downOnce sync.Once // the gossip and control plane stop once
	wg       sync.WaitGroup
}

// StartRuntime joins (or starts) the pool cfg describes, for host's sessions.
func StartRuntime(cfg RuntimeConfig, host Host) (*Runtime, error) {
	if len(cfg.Key) < MinKeyLen {
		return nil, ErrNoKey
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Runtime{cfg: cfg, host: host, log: cfg.Logger, name: cfg.Name, replicas: cfg.Replicas,
		store: snapshot.NewStore(cfg.ReplicaKeep, cfg.ReplicaMemory), stop: make(chan struct{}),
		moved: make(chan struct{}, 1)}
	n.rounds = newWarm(n.stop)
	n.tombs.init(2 * cfg.HandshakeTimeout)
	n.version.Store(1)
	control := cfg.Control
	if control == "" {
		host, _, err := net.SplitHostPort(cfg.Gossip)
		if err != nil {
			return nil, fmt.Errorf("pool: gossip address %q: %w", cfg.Gossip, err)
		}
		control = net.JoinHostPort(host, "0")
	}
	ctlLn, err := net.Listen("tcp", control)
	if err != nil {
		return nil, fmt.Errorf("pool: control plane: %w", err)
	}
	// Idle connections to each member are kept for a drain's window of
	// concurrent handovers: waves of moves reuse them instead of opening
	// (and authenticating) a connection per call.
	tcfg := transport.Config{NodeName: cfg.Name, Key: cfg.Key, Logger: cfg.Logger, MaxIdlePerAddr: firstDrainWindow}
	if n.ctl, err = transport.NewServer(ctlLn, tcfg); err != nil {
		ctlLn.Close()
		return nil, fmt.Errorf("pool: control plane: %w", err)
	}
	if n.rpc, err = transport.NewClient(tcfg); err != nil {
		n.ctl.Close()
		return nil, fmt.Errorf("pool: control plane: %w", err)
	}
	n.registerHandlers()
	n.members, err = New(Config{
		NodeName: cfg.Name, BindAddr: cfg.Gossip, Join: cfg.Join, Key: cfg.Key,
		ClientAddr: cfg.ClientAddr, ControlAddr: ctlLn.Addr().String(),
		Logger: cfg.Logger, Profile: cfg.Profile, OnChange: n.changed,
	})
	if err != nil {
		n.ctl.Close()
		n.rpc.Close()
		return nil, err
	}
	n.refreshMembers()
	n.started.Store(true)
	if cfg.Replicas == 0 {
		n.log.Info("mtcp: pool member without checkpoint replicas: sessions move only while their origin lives")
	}
	n.wg.Add(2)
	go n.reportLoad()
	go n.sweepReplicas(time.Minute, 2*cfg.DetachTimeout)
	if cfg.Balance != nil {
		n.wg.Add(1)
		go n.balance(cfg.Balance.withDefaults())
	}
	n.log.Info("mtcp: joined pool", "member", cfg.Name, "gossip", n.members.GossipAddr(), "control", ctlLn.Addr().String())
	return n, nil
}

// ControlAddr is where the member's control plane listens.
func (n *Runtime) ControlAddr() string { return n.ctl.Addr().String() }

// Name is the member's name.
func (n *Runtime) Name() string { return n.name }

// Replicas is how many copies of each checkpoint the member makes.
func (n *Runtime) Replicas() int { return n.replicas }

// Membership is the member's view of the pool.
func (n *Runtime) Membership() *Pool { return n.members }

// CopiesHeld counts the sessions of other members whose checkpoints this
// member keeps.
func (n *Runtime) CopiesHeld() int { return n.store.Len() }

// StoredCheckpoints returns the copies of session id's checkpoints this
// member keeps for its member, oldest first.
func (n *Runtime) StoredCheckpoints(id [wire.SessionIDLen]byte) []*snapshot.Record {
	return n.store.Records(id)
}

// StoredEpoch is the newest epoch of session id this member knows from the
// control plane (0 if none).
func (n *Runtime) StoredEpoch(id [wire.SessionIDLen]byte) uint64 { return n.store.Epoch(id) }

// AddTraffic counts n bytes its sessions received or wrote, for the load
// the member publishes.
func (n *Runtime) AddTraffic(k int) { n.traffic.Add(uint64(k)) }

// background runs f in a goroutine that Close waits for, unless the member
// is closing; it reports whether it did.
func (n *Runtime) background(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// Close leaves the pool and stops the control plane.
// It may be called more than once, and after Crash.
func (n *Runtime) Close() {
	n.mu.Lock()
	n.closing = true
	n.mu.Unlock()
	n.stopOnce.Do(func() { close(n.stop) })
	n.wg.Wait()
	n.down(true)
}

// down stops gossip (leaving the pool first if leave) and the control plane.
func (n *Runtime) down(leave bool) {
	n.downOnce.Do(func() {
		if leave {
			_ = n.members.Leave(time.Second)
		}
		_ = n.members.Shutdown()
		_ = n.ctl.Close()
		_ = n.rpc.Close()
	})
}

func init() {
	crashhook.RegisterRuntime(func(r any) { r.(*Runtime).crash() })
}

// crash stops the member the way a crash of its process would: no leaving,
// no goodbyes, no forgetting; the control plane and gossip just stop.
// A later Close only waits for the background work to stop. mtcptest.Crash
// calls it, through the Listener's crash (internal/crashhook).
func (n *Runtime) crash() {
	n.mu.Lock()
	n.closing = true
	n.mu.Unlock()
	n.down(false)
}

// changed runs when the membership or a member's metadata changed. When
// the member list changed (a member came, went or drains), every session
// sends its client the new list at once; when only session counts did
// (every second while sessions move), the new list goes with the next
// frames each link sends anyway: thousands of sessions are not woken for
// a figure their clients use only when they choose where to move; nor are
// those of a draining member, whose clients get the list with their MOVE.
// When
// more than the load changed (a member came, went, died and came back, or
// drains), the sessions' replica sets may have changed too: each copies
// its checkpoints to whoever holds them now.
func (n *Runtime) changed() {
	if !n.started.Load() {
		return // the pool is still starting: no session yet
	}
	news := n.refreshMembers()
	if n.host.Draining() {
		// Every session here is to be asked to move: its client gets the
		// new list with its MOVE, not in a send of its own first.
		news = false
	}
	topology := n.members.Topology()
	n.mu.Lock()
	replace := topology != n.topology
	n.topology = topology
	n.mu.Unlock()
	if !news && !replace {
		return
	}
	for _, s := range n.host.Sessions() {
		s.MembersChanged(news, replace)
	}
}

// reportLoad publishes this member's load once a second: its sessions, and
// the bytes per second its sessions read and wrote. The rate is that of
// the sessions it holds now (its traffic per session-second, the sessions
// counted every loadSample, times the sessions now): sessions that just
// came or left do not make the bytes per session look lower or higher
// than they are, which would make a member that takes many sessions at
// once look slow.
func (n *Runtime) reportLoad() {
	defer n.wg.Done()
	t := time.NewTicker(loadSample)
	defer t.Stop()
	last, at := n.traffic.Load(), time.Now()
	var samples, sessions int
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			count := n.host.SessionCount()
			samples, sessions = samples+1, sessions+count
			n.held.Add(uint64(count) * uint64(loadSample/time.Millisecond))
			if now.Sub(at) < time.Second-loadSample/2 {
				continue
			}
			total := n.traffic.Load()
			rate := float64(total-last) / now.Sub(at).Seconds()
			if mean := float64(sessions) / float64(samples); mean > 0 {
				rate *= float64(count) / mean
			}
			last, at, samples, sessions = total, now, 0, 0
			n.members.SetLoad(count, uint64(rate))
		}
	}
}

// loadSample is how often reportLoad counts the sessions.
const loadSample = 250 * time.Millisecond

// refreshMembers rebuilds the MEMBERS frame from the pool; it reports
// whether the member list changed: names, addresses or draining flags.
// A change of session counts or rates only makes a new version of the frame (the
// clients get it with the next frames their links send), which load
// figures the clients are not shown do not do.
func (n *Runtime) refreshMembers() bool {
	list := n.members.Members()
	f := wire.Members{List: make([]wire.MemberInfo, 0, len(list))}
	shape := wire.Members{List: make([]wire.MemberInfo, 0, len(list))}
	n.mu.Lock()
	defer n.mu.Unlock()
	shown := make(map[string]uint64, len(list))
	for _, m := range list {
		rate := shownRate(n.shown[m.Name], m.BytesPerSec)
		shown[m.Name] = rate
		info := wire.MemberInfo{
			Name: m.Name, Addr: m.ClientAddr,
			Draining: m.Draining, Balancing: m.Name == n.name && n.cfg.Balance != nil,
		}
		shape.List = append(shape.List, info)
		info.Sessions = uint32(min(uint64(max(m.Sessions, 0)), math.MaxUint32))
		info.BytesPerSec = rate
		f.List = append(f.List, info)
	}
	n.shown = shown
	b, sb := wire.AppendFrame(nil, f), wire.AppendFrame(nil, shape)
	if bytes.Equal(b, n.frame) {
		return false
	}
	n.frame, n.membersVer = b, n.version.Add(1)
	news := !bytes.Equal(sb, n.shape)
	n.shape = sb
	return news
}

// MembersVersion is the version of the MEMBERS frame: a session whose
// client was sent an older one sends MembersFrame.
func (n *Runtime) MembersVersion() uint64 { return n.version.Load() }

// MembersFrame returns the encoded MEMBERS frame of the current membership
// and its version.
func (n *Runtime) MembersFrame() ([]byte, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.frame, n.membersVer
}

// noteMoved wakes a drain: a session was handed over, or a handover
// settled.
func (n *Runtime) noteMoved() {
	select {
	case n.moved <- struct{}{}:
	default:
	}
}

// namesOf looks members up by name.
func (n *Runtime) namesOf(names []string) []Member {
	out := make([]Member, 0, len(names))
	for _, name := range names {
		if m, ok := n.members.Member(name); ok {
			out = append(out, m)
		}
	}
	return out
}
