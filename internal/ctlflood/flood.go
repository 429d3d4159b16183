// Package ctlflood floods a server's control port, for tests, with
// connections that never finish their handshake: silent ones, part of a
// hello, a whole hello without its proof, a hello and half a proof, a hello
// trickled a byte at a time. Each connection the server drops is reopened
// after a pause, so that new ones keep coming.
//
// A flood can run in the test's own process (Start) or, to look like
// another host whose goroutines do not take turns with the server's, in a
// process of its own: the test binary run again (StartProcess, Child).
package ctlflood

import (
	"context"
	crand "crypto/rand"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is what a flooding connection sends before it waits for the server
// to drop it.
type Kind int

// The kinds of flooding connections.
const (
	Silent    Kind = iota // connects and says nothing
	PartHello             // the first 20 bytes of a hello, then nothing
	Hello                 // a whole hello, never a proof
	HalfProof             // a whole hello and half a proof
	Trickle               // a hello, one byte every 100 ms
)

// Config says how to flood.
type Config struct {
	// Addr is the control port to flood.
	Addr string
	// Conns is the number of connections held at once.
	Conns int
	// Kinds are the kinds of the connections, taken in turn.
	Kinds []Kind
	// Reconnect is the mean pause before a dropped connection is reopened
	// (between half and one and a half times it).
	Reconnect time.Duration
	// Stagger opens the connections over the first fifth of Reconnect
	// rather than all at once.
	Stagger bool
	// DialTimeout bounds each dial (1 s if zero).
	DialTimeout time.Duration
	// Hello returns a well-formed hello from a peer without the pool key.
	Hello func() []byte
	// HalfProof is the number of bytes a HalfProof connection sends after
	// its hello.
	HalfProof int
}

// Flood is a running flood.
type Flood struct {
	// Opened counts the connections opened in all.
	Opened atomic.Int64
	// Dropped counts the connections the server closed.
	Dropped atomic.Int64

	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start starts a flood as cfg says; Stop ends it.
func Start(cfg Config) *Flood {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Flood{cfg: cfg, ctx: ctx, cancel: cancel}
	for i := range cfg.Conns {
		f.wg.Go(func() { f.hold(cfg.Kinds[i%len(cfg.Kinds)]) })
	}
	return f
}

// Stop closes every connection of the flood and waits for its goroutines.
func (f *Flood) Stop() {
	f.cancel()
	f.wg.Wait()
}

// hold keeps one connection of the given kind open until the flood stops.
func (f *Flood) hold(kind Kind) {
	d := net.Dialer{Timeout: f.cfg.DialTimeout}
	buf := make([]byte, 512)
	if f.cfg.Stagger {
		f.pause(rand.N(f.cfg.Reconnect / 5))
	}
	for f.ctx.Err() == nil {
		nc, err := d.DialContext(f.ctx, "tcp", f.cfg.Addr)
		if err != nil {
			f.pause(50 * time.Millisecond)
			continue
		}
		f.Opened.Add(1)
		stop := context.AfterFunc(f.ctx, func() { _ = nc.Close() })
		err = f.send(nc, kind)
		for err == nil {
			_, err = nc.Read(buf)
		}
		stop()
		_ = nc.Close()
		if f.ctx.Err() == nil {
			f.Dropped.Add(1)
		}
		f.pause(f.cfg.Reconnect/2 + rand.N(f.cfg.Reconnect))
	}
}

// send writes what a connection of the given kind sends.
func (f *Flood) send(nc net.Conn, kind Kind) error {
	if kind == Silent {
		return nil
	}
	hello := f.cfg.Hello()
	var err error
	switch kind {
	case PartHello:
		_, err = nc.Write(hello[:20])
	case Hello:
		_, err = nc.Write(hello)
	case HalfProof:
		half := make([]byte, f.cfg.HalfProof)
		_, _ = crand.Read(half)
		_, err = nc.Write(append(hello, half...))
	case Trickle:
		for i := 0; i < len(hello) && err == nil && f.ctx.Err() == nil; i++ {
			_, err = nc.Write(hello[i : i+1])
			f.pause(100 * time.Millisecond)
		}
	}
	return err
}

func (f *Flood) pause(d time.Duration) {
	select {
	case <-time.After(d):
	case <-f.ctx.Done():
	}
}
