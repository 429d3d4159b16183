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
	"github.com/migratory/mtcp/internal/memnet"
	"github.com/migratory/mtcp/pool"
)

// Pool is an in-process pool of members serving one handler.
type Pool struct {
	t       testing.TB
	handler func(*mtcp.Conn)
	key     []byte
	tweak   func(*mtcp.Config)

	mu      sync.Mutex
	members []*Member
	byAddr  map[string]*memnet.Listener
	next    int
	wg      sync.WaitGroup
}

// Member is one member of a Pool.
type Member struct {
	Name     string
	Listener *mtcp.Listener
	mem      *memnet.Listener
	crashed  bool
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
	p := &Pool{t: t, handler: handler, key: []byte("mtcptest pool key, 32 bytes!!!!!"), byAddr: map[string]*memnet.Listener{}}
	p.tweak = func(c *mtcp.Config) {
		for _, o := range opts {
			o(c)
		}
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
	var join []string
	for _, m := range p.members {
		if !m.crashed && m.Listener.GossipAddr() != "" {
			join = append(join, m.Listener.GossipAddr())
		}
	}
	p.mu.Unlock()
	cfg := mtcp.NewPoolConfig(name, "127.0.0.1:0", p.key, join...)
	cfg.PoolProfile = pool.ProfileLocal
	p.tweak(cfg)
	mem := memnet.Listen(name + ".mtcptest:7000") // a host:port, as pools publish
	ln, err := mtcp.NewListener(mem, cfg)
	if err != nil {
		mem.Close()
		return nil, err
	}
	m := &Member{Name: name, Listener: ln, mem: mem}
	p.mu.Lock()
	p.members = append(p.members, m)
	p.byAddr[ln.Addr().String()] = mem
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mc, ok := c.(*mtcp.Conn)
			if !ok {
				c.Close()
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handler(mc)
			}()
		}
	}()
	return m, nil
}

func (p *Pool) waitMembers(n int) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ok := true
		for _, m := range p.Members() {
			if len(m.Listener.Members()) < n {
				ok = false
			}
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("mtcptest: the %d members did not find each other", n)
}

// Members returns the live members.
func (p *Pool) Members() []*Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*Member
	for _, m := range p.members {
		if !m.crashed {
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
	p.mu.Lock()
	m.crashed = true
	p.mu.Unlock()
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
	p.wg.Wait()
}
