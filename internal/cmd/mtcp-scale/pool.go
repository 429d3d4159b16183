package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/localpool"
	"github.com/migratory/mtcp/pool"
)

var poolKey = []byte("mtcp-scale pool key, 32 bytes!!!")

// testPool is a pool of members in this process, on loopback, each
// session served by app in a goroutine of its own.
type testPool struct {
	local   localpool.Pool
	members []*mtcp.Listener

	closeOnce sync.Once
	stuck     []string
}

// startPool starts n members m0, m1, ... and waits until each sees all.
func startPool(ctx context.Context, o *options, n int, tweak func(*mtcp.Config), app func(member string, c *mtcp.Conn)) (*testPool, error) {
	p := &testPool{}
	p.local = localpool.Pool{
		Key: poolKey,
		Tweak: func(cfg *mtcp.Config) {
			cfg.PoolProfile = o.profile
			cfg.Logger = o.logger
			cfg.HandshakeTimeout = o.poolHandshake
			if tweak != nil {
				tweak(cfg)
			}
		},
		App: app,
	}
	var join []string
	for i := range n {
		ln, err := p.local.Start(fmt.Sprintf("m%d", i), join)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("starting member m%d: %w", i, err)
		}
		if i == 0 {
			join = []string{ln.GossipAddr()}
		}
		p.members = append(p.members, ln)
	}
	if err := localpool.Wait(ctx, p.members, n); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// addrs returns the members' client addresses.
func (p *testPool) addrs() []string {
	var out []string
	for _, ln := range p.members {
		out = append(out, ln.Addr().String())
	}
	return out
}

// byName returns the member with that name, or nil.
func (p *testPool) byName(name string) *mtcp.Listener {
	for _, ln := range p.members {
		if ln.NodeName() == name {
			return ln
		}
	}
	return nil
}

// appWait bounds how long close waits for the applications to return.
const appWait = 15 * time.Second

// close stops the members and waits (at most appWait) for the
// applications to return; it describes those that did not.
func (p *testPool) close() []string {
	p.closeOnce.Do(func() {
		for c, member := range p.local.Close(appWait) {
			st := c.Status()
			p.stuck = append(p.stuck, fmt.Sprintf("%s session %s (attached %v, epoch %d, received %d, consumed %d, written %d, retained %d, err %v)",
				member, c.SessionID(), st.Attached, st.Epoch, st.Received, st.Consumed, st.Written, st.Retained, c.Err()))
		}
	})
	return p.stuck
}

// noteStuck closes the pool and notes in t the applications still running
// appWait after it closed: their sessions never ended.
func (p *testPool) noteStuck(t *table) {
	stuck := p.close()
	if len(stuck) == 0 {
		return
	}
	t.note("%d server applications were still running %v after their clients ended and the pool closed (their sessions never ended), e.g.: %s",
		len(stuck), appWait, strings.Join(stuck[:min(3, len(stuck))], "; "))
}

// profileByName maps the -profile flag to a pool profile.
func profileByName(name string) (pool.Profile, error) {
	switch name {
	case "local":
		return pool.ProfileLocal, nil
	case "lan":
		return pool.ProfileLAN, nil
	}
	return 0, fmt.Errorf("unknown pool profile %q (local or lan)", name)
}

var discardLogger = slog.New(slog.DiscardHandler)
