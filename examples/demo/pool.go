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
	"github.com/migratory/mtcp/internal/localpool"
)

// demoPool is three members in this process, serving generated files.
type demoPool struct {
	local   localpool.Pool
	members []*member
	named   sync.Map   // name -> *member, for the members' applications
	events  chan event // what the client's log says about moves
	verbose bool
}

type member struct {
	name       string
	ln         *mtcp.Listener
	overloaded atomic.Bool
}

func startPool(verbose bool) (*demoPool, error) {
	p := &demoPool{events: make(chan event, 64), verbose: verbose}
	p.local = localpool.Pool{
		Key: []byte("demo pool key, 32 bytes long!!!!"),
		Tweak: func(cfg *mtcp.Config) {
			if verbose {
				cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("member", cfg.NodeName)
			}
		},
		// The file server; an overloaded member serves slowly.
		App: func(name string, c *mtcp.Conn) {
			m, _ := p.named.Load(name)
			_ = files.Serve(c, slowSource{files.Generated{}, m.(*member)})
		},
	}
	for i := 0; i < 3; i++ {
		if err := p.start(); err != nil {
			p.close()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := localpool.Wait(ctx, p.local.Members(), 3); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// start starts one more member (m1, m2, ...), joined to the live ones.
func (p *demoPool) start() error {
	m := &member{name: fmt.Sprintf("m%d", len(p.members)+1)}
	var join []string
	for _, o := range p.members {
		if g := o.ln.GossipAddr(); g != "" {
			join = append(join, g)
		}
	}
	p.named.Store(m.name, m) // before it serves: its application looks it up
	ln, err := p.local.Start(m.name, join)
	if err != nil {
		return err
	}
	m.ln = ln
	p.members = append(p.members, m)
	return nil
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
		// About 0.6 MiB/s in 256 KiB reads: well under a third of what the
		// download gets otherwise, even on a busy machine.
		time.Sleep(400 * time.Millisecond)
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

func (p *demoPool) close() { p.local.Close(0) }

// replace starts a new member, keeping three live members.
func (p *demoPool) replace() {
	if err := p.start(); err != nil {
		fmt.Println("starting a member:", err)
	}
}
