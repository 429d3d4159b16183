package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/examples/fileserver/files"
	"github.com/migratory/mtcp/pool"
)

// demoPool is three members in this process.
type demoPool struct {
	members []*member
	events  chan event // what the client's log says about moves
	verbose bool
}

type member struct {
	name       string
	ln         *mtcp.Listener
	overloaded atomic.Bool
	wg         sync.WaitGroup
}

func startPool(verbose bool) (*demoPool, error) {
	p := &demoPool{events: make(chan event, 64), verbose: verbose}
	key := []byte("demo pool key, 32 bytes long!!!!")
	var join []string
	for i := 0; i < 3; i++ {
		m := &member{name: fmt.Sprintf("m%d", i+1)}
		cfg := mtcp.NewPoolConfig(m.name, "127.0.0.1:0", key, join...)
		cfg.PoolProfile = pool.ProfileLocal
		if verbose {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("member", m.name)
		}
		ln, err := mtcp.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			p.close()
			return nil, err
		}
		m.ln = ln
		join = []string{ln.GossipAddr()}
		p.members = append(p.members, m)
		m.wg.Add(1)
		go m.serve()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if len(p.members[0].ln.Members()) == 3 && len(p.members[2].ln.Members()) == 3 {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.close()
			return nil, fmt.Errorf("the members did not find each other")
		}
	}
}

// serve runs the file server; an overloaded member serves slowly.
func (m *member) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		mc, ok := c.(*mtcp.Conn)
		if !ok {
			c.Close()
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			_ = files.Serve(mc, slowSource{files.Generated{}, m})
		}()
	}
}

// slowSource makes reads slow while its member is overloaded.
type slowSource struct {
	files.Source
	m *member
}

func (s slowSource) Open(name string, offset int64) (io.ReadCloser, int64, error) {
	r, size, err := s.Source.Open(name, offset)
	if err != nil {
		return nil, 0, err
	}
	return slowReader{r, s.m}, size, nil
}

type slowReader struct {
	io.ReadCloser
	m *member
}

func (r slowReader) Read(p []byte) (int, error) {
	if r.m.overloaded.Load() {
		time.Sleep(100 * time.Millisecond) // about 2.5 MiB/s in 256 KiB reads
	}
	return r.ReadCloser.Read(p)
}

func (p *demoPool) names() string {
	var s []string
	for _, m := range p.members {
		s = append(s, m.name)
	}
	return strings.Join(s, ", ")
}

func (p *demoPool) byName(name string) *member {
	for _, m := range p.members {
		if m.name == name {
			return m
		}
	}
	return nil
}

// dial opens the client's session, with a policy that reacts within a few
// seconds and a logger that reports moves to the progress display.
func (p *demoPool) dial(ctx context.Context) (*mtcp.Conn, error) {
	var h slog.Handler = &eventHandler{events: p.events}
	if p.verbose {
		h = &teeHandler{h, slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})}
	}
	d := &mtcp.Dialer{
		Logger: slog.New(h),
		Policy: &mtcp.DefaultPolicy{Settle: 2 * time.Second, DropFor: 2},
	}
	c, err := d.DialContext(ctx, "tcp", p.members[0].ln.Addr().String())
	if err != nil {
		return nil, err
	}
	mc := c.(*mtcp.Conn)
	for deadline := time.Now().Add(5 * time.Second); len(mc.Members()) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return mc, nil
}

func (p *demoPool) close() {
	for _, m := range p.members {
		m.ln.Close()
		m.wg.Wait()
	}
}

// replace starts a new member, keeping three live members.
func (p *demoPool) replace() {
	key := []byte("demo pool key, 32 bytes long!!!!")
	m := &member{name: fmt.Sprintf("m%d", len(p.members)+1)}
	var join []string
	for _, o := range p.members {
		if g := o.ln.GossipAddr(); g != "" {
			join = append(join, g)
		}
	}
	cfg := mtcp.NewPoolConfig(m.name, "127.0.0.1:0", key, join...)
	cfg.PoolProfile = pool.ProfileLocal
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		fmt.Println("starting a member:", err)
		return
	}
	m.ln = ln
	p.members = append(p.members, m)
	m.wg.Add(1)
	go m.serve()
}
