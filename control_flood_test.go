package mtcp

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/ctlflood"
	"github.com/migratory/mtcp/transport"
)

// ctlFloodEnv names the environment variable that makes the test binary a
// flooding process (ctlflood.Child).
const ctlFloodEnv = "MTCP_TEST_CTL_FLOOD"

// ctlFloodConfig floods a member's control port with connections that
// never finish their handshake: silent ones, part of a hello, a whole hello
// without its proof, a hello and half a proof. They are opened over the
// first fifth of the reconnect pause, and one the member drops is reopened
// after a pause (a mean of reconnect): new ones keep coming at about
// n/reconnect a second.
func ctlFloodConfig(n int, reconnect time.Duration) ctlflood.Config {
	return ctlflood.Config{
		Conns: n, Reconnect: reconnect, Stagger: true, DialTimeout: 5 * time.Second,
		Kinds: []ctlflood.Kind{ctlflood.Silent, ctlflood.PartHello, ctlflood.Hello, ctlflood.HalfProof},
		Hello: ctlHello, HalfProof: 16,
	}
}

// ctlHello is a well-formed transport hello (see transport's package doc)
// from a peer that does not hold the pool key.
func ctlHello() []byte {
	h := append([]byte("mtcp-ctl"), 1)
	var nonceAndPub [64]byte
	_, _ = crand.Read(nonceAndPub[:])
	h = append(h, nonceAndPub[:]...)
	h = binary.BigEndian.AppendUint32(h, 1<<20)
	return append(h, 4, 'e', 'v', 'i', 'l')
}

// copiedNewest reports whether a member other than the one holding
// the server end sc keeps a copy of sc's newest checkpoint.
func copiedNewest(members []*Listener, holder string, sc *Conn) bool {
	sc.mu.Lock()
	var newest uint64
	if k := len(sc.server.ckpts); k > 0 {
		newest = sc.server.ckpts[k-1].Seq
	}
	sc.mu.Unlock()
	for _, ln := range members {
		if ln.NodeName() == holder {
			continue
		}
		for _, r := range ln.member.StoredCheckpoints(sc.id) {
			if r.Seq >= newest {
				return true
			}
		}
	}
	return false
}

// TestControlPlaneFlood: from another process, the control port of every
// member of a 3-member pool is flooded with 10×MaxConns unauthenticated
// connections (silent, a part of a hello, a hello without its proof, a
// hello and half a proof), each reopened a few seconds after the member
// drops it, from before the members first talk to each other; meanwhile
// sessions replicate their checkpoints and move between members, by their
// clients' Migrate and by their servers'. Every move succeeds, every
// checkpoint reaches a replica, and every stream is intact byte for byte.
func TestControlPlaneFlood(t *testing.T) {
	if ctlflood.Child(t, ctlFloodEnv, ctlFloodConfig(0, 0)) {
		return
	}
	const (
		sessions   = 6
		moves      = 4 // per session, every other one by the server
		round      = 128 << 10
		timeout    = 10 * time.Second
		floodConns = 10 * transport.DefaultMaxConns
	)
	ap := startAppPool(t, 3, func(cfg *Config) {
		cfg.Replicas = 1
		cfg.FirstByteTimeout = timeout // a client is not taken for a plain one when the CPU is scarce
	}, appOptions{})
	defer ap.close()

	var addrs []string
	for _, ln := range ap.members {
		addrs = append(addrs, ln.member.ControlAddr())
	}
	flood := ctlflood.StartProcess(t, ctlFloodEnv, addrs, ctlFloodConfig(floodConns, 10*time.Second))
	// The sessions start once every member has had 10×MaxConns and turned
	// away all but MaxHandshakes of them: they meet members that hold a
	// full house of handshakes, with new ones coming. (A member that cannot
	// turn them away is the failure the sessions then show.)
	floodStart := time.Now()
	for ready := false; !ready && time.Since(floodStart) < 30*time.Second; time.Sleep(10 * time.Millisecond) {
		ready = true
		for i := range addrs {
			opened, dropped := flood.Counts(i)
			ready = ready && opened >= floodConns && dropped >= floodConns-transport.DefaultMaxHandshakes
		}
	}
	t.Logf("the flood started in %v", time.Since(floodStart))

	type outcome struct {
		id      string
		served  []string
		slowest time.Duration
		err     error
		es      *echoSession
	}
	results := make([]outcome, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			o := &results[i]
			o.err = func() error {
				d := &Dialer{Logger: testLogger(t)}
				c, err := d.Dial("tcp", ap.addr(fmt.Sprintf("m%d", i%3)))
				if err != nil {
					return fmt.Errorf("dial: %w", err)
				}
				mc := c.(*Conn)
				o.id = mc.SessionID()
				o.es = newEchoSession(c, uint64(100+i))
				o.served = append(o.served, mc.MemberName())
				for deadline := time.Now().Add(timeout); len(mc.Members()) < 3; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						return fmt.Errorf("the client knows %d members", len(mc.Members()))
					}
				}
				for m := 0; ; m++ {
					if err := o.es.round(round, timeout); err != nil {
						return fmt.Errorf("round %d: %w", m, err)
					}
					holder := mc.MemberName()
					sc := serverEnd(ap.member(holder), o.id)
					if sc == nil {
						return fmt.Errorf("round %d: %s holds no server end", m, holder)
					}
					deadline := time.Now().Add(timeout)
					for !copiedNewest(ap.members, holder, sc) {
						if time.Now().After(deadline) {
							return fmt.Errorf("round %d: the newest checkpoint on %s has no copy", m, holder)
						}
						time.Sleep(5 * time.Millisecond)
					}
					if m == moves {
						return nil
					}
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					start := time.Now()
					if m%2 == 0 {
						var k int
						_, _ = fmt.Sscanf(holder, "m%d", &k)
						to := ap.addr(fmt.Sprintf("m%d", (k+1)%3))
						// Gossip under a starved CPU may briefly lose a member.
						for !slices.ContainsFunc(mc.Members(), func(m Member) bool { return m.Addr == to }) && ctx.Err() == nil {
							time.Sleep(5 * time.Millisecond)
						}
						err = mc.Migrate(ctx, to)
					} else {
						err = sc.Migrate(ctx, "")
					}
					cancel()
					o.slowest = max(o.slowest, time.Since(start))
					if err != nil {
						return fmt.Errorf("move %d from %s: %w", m, holder, err)
					}
					deadline = time.Now().Add(timeout)
					for mc.MemberName() == holder {
						if time.Now().After(deadline) {
							return fmt.Errorf("move %d: the client still sees %s", m, holder)
						}
						time.Sleep(5 * time.Millisecond)
					}
					o.served = append(o.served, mc.MemberName())
				}
			}()
		})
	}
	wg.Wait()
	flood.Stop()
	for i := range addrs {
		opened, dropped := flood.Counts(i)
		t.Logf("m%d: %d flood connections opened, %d dropped", i, opened, dropped)
	}
	for _, o := range results {
		t.Logf("session %s: served by %v, the slowest move %v", o.id, o.served, o.slowest)
		require.NoError(t, o.err, "session %s", o.id)
	}
	for _, o := range results {
		ap.finishSession(t, o.es)
		require.Equal(t, o.served, ap.servedBy(o.id), "the application ran where the client was served")
	}
	require.Empty(t, ap.errors())
}
