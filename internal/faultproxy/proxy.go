// Package faultproxy is a TCP proxy for tests that breaks the path between a
// client and a server on command: it can reset every connection through it,
// or black-hole the path silently (nothing is forwarded, nothing is closed,
// new connections hang), as a dead route does.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections from its listen address to a target.
type Proxy struct {
	ln     net.Listener
	target string
	delay  time.Duration // each way, for connections opened from now on (SetDelay)

	mu       sync.Mutex
	conns    map[*pair]struct{}
	holeOpen chan struct{} // closed while the path is healthy; replaced by Blackhole
	closed   bool
	wg       sync.WaitGroup

	resets atomic.Int64
}

type pair struct{ client, server net.Conn }

// New starts a proxy on 127.0.0.1 forwarding to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[*pair]struct{}{}, holeOpen: make(chan struct{})}
	close(p.holeOpen)
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget changes where new connections go.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Resets is how many connections ResetAll has cut.
func (p *Proxy) Resets() int64 { return p.resets.Load() }

// ResetAll cuts every connection through the proxy with a TCP reset on
// both sides.
func (p *Proxy) ResetAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for pr := range p.conns {
		abort(pr.client)
		abort(pr.server)
		delete(p.conns, pr)
		n++
	}
	p.resets.Add(int64(n))
	return n
}

func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close sends RST
	}
	_ = c.Close()
}

// Blackhole stops the path silently: bytes in flight stay where they are,
// nothing is closed, and new connections are accepted but not forwarded.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.holeOpen:
		p.holeOpen = make(chan struct{})
	default:
	}
}

// Heal ends a Blackhole: held bytes flow again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.holeOpen:
	default:
		close(p.holeOpen)
	}
}

// waitOpen blocks while the path is black-holed; false if the proxy closed.
func (p *Proxy) waitOpen(done <-chan struct{}) bool {
	p.mu.Lock()
	ch := p.holeOpen
	p.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-done:
		return false
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	for pr := range p.conns {
		pr.client.Close()
		pr.server.Close()
	}
	select {
	case <-p.holeOpen:
	default:
		close(p.holeOpen)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	done := make(chan struct{})
	defer close(done)
	if !p.waitOpen(done) {
		client.Close()
		return
	}
	p.mu.Lock()
	target, closed, delay := p.target, p.closed, p.delay
	p.mu.Unlock()
	if closed {
		client.Close()
		return
	}
	server, err := net.Dial("tcp", target)
	if err != nil {
		abort(client)
		return
	}
	pr := &pair{client: client, server: server}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[pr] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	if delay > 0 {
		go func() { defer wg.Done(); p.pumpDelayed(server, client, delay) }()
		go func() { defer wg.Done(); p.pumpDelayed(client, server, delay) }()
	} else {
		go func() { defer wg.Done(); p.pump(server, client) }()
		go func() { defer wg.Done(); p.pump(client, server) }()
	}
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, pr)
	p.mu.Unlock()
}

// pump copies src to dst, holding bytes while the path is black-holed.
func (p *Proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitOpen(nil) {
				break
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			break
		}
	}
	abort(dst)
	abort(src)
}

// ResetEvery returns a progress callback (for transfer.Echo) that resets
// every connection through the proxy each time another step bytes came
// back, and the count of those cuts.
func (p *Proxy) ResetEvery(step int64) (onProgress func(got int64), cuts *atomic.Int32) {
	var next atomic.Int64
	next.Store(step)
	cuts = new(atomic.Int32)
	return func(got int64) {
		if got >= next.Load() && p.ResetAll() > 0 {
			next.Add(step)
			cuts.Add(1)
		}
	}, cuts
}
