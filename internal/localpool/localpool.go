// Package localpool runs members of one mtcp pool in this process, each
// session served by an application in a goroutine of its own (or each
// member by a server of its own): the harness under mtcptest, mtcphttp's
// tests, the demo and mtcp-scale.
package localpool

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/pool"
)

// Pool is the members of one pool that run in this process. Set its fields
// before the first Start.
type Pool struct {
	// Key is the pool key.
	Key []byte
	// Tweak, if set, adjusts each member's Config (made by
	// mtcp.NewPoolConfig, with the local pool profile).
	Tweak func(*mtcp.Config)
	// Listen, if set, opens the listener a member's sessions arrive on
	// (an in-memory one, say); by default mtcp.Listen opens a free
	// loopback TCP port.
	Listen func(name string) (net.Listener, error)
	// App serves one session on the member called member.
	App func(member string, c *mtcp.Conn)
	// Serve, if set, serves a member's listener in place of the accept
	// loop that runs App (an HTTP server, say); it returns when the
	// listener closes, and WaitApps waits for it.
	Serve func(member string, ln *mtcp.Listener)

	mu      sync.Mutex
	members []*mtcp.Listener
	gone    map[*mtcp.Listener]bool // drained, crashed or closed by the test
	wg      sync.WaitGroup
	running sync.Map // *mtcp.Conn -> member name, while its application runs
}

// Start starts member name, which joins the pool through the gossip
// addresses join (none for the first member), and serves its sessions.
func (p *Pool) Start(name string, join []string) (*mtcp.Listener, error) {
	cfg := mtcp.NewPoolConfig(name, "127.0.0.1:0", p.Key, join...)
	cfg.PoolProfile = pool.ProfileLocal
	if p.Tweak != nil {
		p.Tweak(cfg)
	}
	ln, err := p.listen(name, cfg)
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", name, err)
	}
	p.mu.Lock()
	p.members = append(p.members, ln)
	p.mu.Unlock()
	p.wg.Add(1)
	if p.Serve != nil {
		go func() {
			defer p.wg.Done()
			p.Serve(name, ln)
		}()
		return ln, nil
	}
	go p.serve(ln)
	return ln, nil
}

// listen opens member name's listener: on p.Listen's, or as an application
// would (mtcp.Listen on a free loopback TCP port), so that the harness
// measures the links users get.
func (p *Pool) listen(name string, cfg *mtcp.Config) (*mtcp.Listener, error) {
	if p.Listen == nil {
		return mtcp.Listen("tcp", "127.0.0.1:0", cfg)
	}
	inner, err := p.Listen(name)
	if err != nil {
		return nil, err
	}
	ln, err := mtcp.NewListener(inner, cfg)
	if err != nil {
		_ = inner.Close()
		return nil, err
	}
	return ln, nil
}

// serve accepts sessions on ln until it is closed; plain connections are
// closed at once.
func (p *Pool) serve(ln *mtcp.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mc, ok := c.(*mtcp.Conn)
		if !ok {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		p.running.Store(mc, ln.NodeName())
		go func() {
			defer p.wg.Done()
			defer p.running.Delete(mc)
			p.App(ln.NodeName(), mc)
		}()
	}
}

// Members returns the members started, in order.
func (p *Pool) Members() []*mtcp.Listener {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*mtcp.Listener(nil), p.members...)
}

// Gone marks ln, a member of p, as stopped (drained, crashed, closed):
// Live leaves it out, and members started later do not join through it.
func (p *Pool) Gone(ln *mtcp.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone == nil {
		p.gone = map[*mtcp.Listener]bool{}
	}
	p.gone[ln] = true
}

// Live returns the members started and not gone, in order.
func (p *Pool) Live() []*mtcp.Listener {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*mtcp.Listener
	for _, ln := range p.members {
		if !p.gone[ln] {
			out = append(out, ln)
		}
	}
	return out
}

// Join returns the gossip addresses of the live members, through which a
// new member joins them.
func (p *Pool) Join() []string {
	var join []string
	for _, ln := range p.Live() {
		if a := ln.GossipAddr(); a != "" {
			join = append(join, a)
		}
	}
	return join
}

// Wait waits until each of members sees at least n members, or ctx ends.
func Wait(ctx context.Context, members []*mtcp.Listener, n int) error {
	for {
		all := true
		for _, ln := range members {
			if len(ln.Members()) < n {
				all = false
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the %d members did not see each other: %w", n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Close closes every member and waits for the applications, as WaitApps.
func (p *Pool) Close(wait time.Duration) map[*mtcp.Conn]string {
	for _, ln := range p.Members() {
		_ = ln.Close()
	}
	return p.WaitApps(wait)
}

// WaitApps waits for the applications to return, at most wait (0: as long
// as they take). It returns those still running, each session with the
// name of its member.
func (p *Pool) WaitApps(wait time.Duration) map[*mtcp.Conn]string {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	var timeout <-chan time.Time
	if wait > 0 {
		timeout = time.After(wait)
	}
	select {
	case <-done:
		return nil
	case <-timeout:
	}
	stuck := map[*mtcp.Conn]string{}
	p.running.Range(func(k, v any) bool {
		stuck[k.(*mtcp.Conn)] = v.(string)
		return true
	})
	return stuck
}
