// Package mtcptest runs an mtcp pool inside a test, in the manner of
// net/http/httptest: a few members serving your handler, clients connected
// to them through in-memory pipes, and calls that move a session to another
// member or crash a member, so that you can test your application's
// Checkpoint and State logic in an ordinary unit test.
//
// Sessions travel over in-memory pipes; the members' gossip and control
// plane use loopback sockets (127.0.0.1, free ports).
package mtcptest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/localpool"
	"github.com/migratory/mtcp/internal/memnet"
)

// Pool is an in-process pool of members serving one handler.
type Pool struct {
	t     testing.TB
	local localpool.Pool

	mu      sync.Mutex
	members map[*mtcp.Listener]*Member
	byAddr  map[string]*memnet.Listener // client address -> the member's in-memory listener
	byName  map[string]*memnet.Listener // member name -> the same
	next    int
}

// Member is one member of a Pool.
type Member struct {
	Name     string         // its member name (Config.NodeName)
	Listener *mtcp.Listener // its listener, serving the pool's handler
	mem      *memnet.Listener
}

// Option changes how a Pool's members are configured.
type Option func(*mtcp.Config)

// WithConfig lets f adjust each member's Config (limits, Replicas, Logger...).
func WithConfig(f func(*mtcp.Config)) Option { return f }

// NewPool starts n members serving handler (each session in its own
// goroutine) and waits until they see each other. It is closed when the
// test ends.
func NewPool(t testing.TB, n int, handler func(*mtcp.Conn), opts ...Option) *Pool {
	t.Helper()
	p := &Pool{t: t, members: map[*mtcp.Listener]*Member{},
		byAddr: map[string]*memnet.Listener{}, byName: map[string]*memnet.Listener{}}
	p.local = localpool.Pool{
		Key: []byte("mtcptest pool key, 32 bytes!!!!!"),
		Tweak: func(c *mtcp.Config) {
			for _, o := range opts {
				o(c)
			}
		},
		Listen: func(name string) (net.Listener, error) {
			mem := memnet.Listen(name + ".mtcptest:7000") // a host:port, as pools publish
			p.mu.Lock()
			p.byName[name] = mem
			p.mu.Unlock()
			return mem, nil
		},
		App: func(_ string, c *mtcp.Conn) { handler(c) },
	}
	for i := 0; i < n; i++ {
		if _, err := p.AddMember(); err != nil {
			p.Close()
			t.Fatalf("mtcptest: starting member %d: %v", i, err)
		}
	}
	if err := p.waitMembers(n); err != nil {
		p.Close()
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// AddMember starts one more member, joined to the live ones.
func (p *Pool) AddMember() (*Member, error) {
	p.mu.Lock()
	name := fmt.Sprintf("member-%d", p.next)
	p.next++
	p.mu.Unlock()
	ln, err := p.local.Start(name, p.local.Join())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	m := &Member{Name: name, Listener: ln, mem: p.byName[name]}
	p.members[ln] = m
	p.byAddr[ln.Addr().String()] = m.mem
	p.mu.Unlock()
	return m, nil
}

// waitMembers waits until every live member sees n members.
func (p *Pool) waitMembers(n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var lns []*mtcp.Listener
	for _, m := range p.Members() {
		lns = append(lns, m.Listener)
	}
	if err := localpool.Wait(ctx, lns, n); err != nil {
		return fmt.Errorf("mtcptest: %w", err)
	}
	return nil
}

// Members returns the live members, in the order they started.
func (p *Pool) Members() []*Member {
	lns := p.local.Live()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Member, 0, len(lns))
	for _, ln := range lns {
		if m := p.members[ln]; m != nil { // nil: still being added
			out = append(out, m)
		}
	}
	return out
}

// Dialer returns a Dialer that reaches the pool's members through in-memory
// pipes, with quick keepalives and resume timeouts suited to tests.
func (p *Pool) Dialer() *mtcp.Dialer {
	return &mtcp.Dialer{
		DialFunc:         p.dial,
		KeepAlive:        100 * time.Millisecond,
		KeepAliveTimeout: time.Second,
		HandshakeTimeout: time.Second,
		ResumeTimeout:    5 * time.Second,
	}
}

func (p *Pool) dial(ctx context.Context, network, address string) (net.Conn, error) {
	p.mu.Lock()
	mem := p.byAddr[address]
	p.mu.Unlock()
	if mem == nil {
		return nil, &net.OpError{Op: "dial", Net: "mem", Err: fmt.Errorf("no member at %q", address)}
	}
	return mem.Dial(ctx, network, address)
}

// Dial opens a client session at the first live member.
func (p *Pool) Dial() *mtcp.Conn {
	p.t.Helper()
	ms := p.Members()
	if len(ms) == 0 {
		p.t.Fatal("mtcptest: no live member")
	}
	c, err := p.Dialer().DialContext(context.Background(), "mem", ms[0].Listener.Addr().String())
	if err != nil {
		p.t.Fatalf("mtcptest: dial: %v", err)
	}
	mc := c.(*mtcp.Conn)
	for deadline := time.Now().Add(5 * time.Second); len(mc.Members()) < len(ms) && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	return mc
}

// Move moves a client session to another member and returns once it runs
// there.
func (p *Pool) Move(c *mtcp.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Migrate(ctx, "")
}

// Serving returns the member serving a client session.
func (p *Pool) Serving(c *mtcp.Conn) *Member {
	name := c.MemberName()
	for _, m := range p.Members() {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Crash stops a member as a killed process stops (see Crash): its
// sessions' clients resume on other members from the replicated
// checkpoints.
func (p *Pool) Crash(m *Member) {
	p.local.Gone(m.Listener)
	Crash(m.Listener)
}

// Close stops every member and waits for the handlers to return.
func (p *Pool) Close() {
	for _, m := range p.Members() {
		_ = m.Listener.Close()
	}
	p.mu.Lock()
	for _, m := range p.members {
		m.mem.Close()
	}
	p.mu.Unlock()
	p.local.WaitApps(0)
}
