package mtcp

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// offlineNet is a client's network that can go down: while it is down,
// dials fail and the links it made are closed.
type offlineNet struct {
	down  atomic.Bool
	mu    sync.Mutex
	links []net.Conn
}

var errNetworkDown = errors.New("test: the client's network is down")

func (o *offlineNet) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if o.down.Load() {
		return nil, errNetworkDown
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.links = append(o.links, nc)
	o.mu.Unlock()
	return nc, nil
}

// goDown cuts the client off: its links close and new dials fail.
func (o *offlineNet) goDown() {
	o.down.Store(true)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, nc := range o.links {
		_ = nc.Close()
	}
	o.links = nil
}

// addMember starts one more member of the pool and waits until every live
// member sees it.
func (tp *testPool) addMember(name string, tweak func(*Config)) *Listener {
	cfg := memberConfig(tp.t, name, []string{tp.members[0].GossipAddr()})
	if tweak != nil {
		tweak(cfg)
	}
	ln, err := Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(tp.t, err)
	tp.members = append(tp.members, ln)
	tp.apps.serve(ln)
	require.Eventually(tp.t, func() bool {
		for _, m := range tp.members {
			if !listenerClosed(m) && !hasMember(m.Members(), name) {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "the pool sees %s", name)
	return ln
}

func listenerClosed(ln *Listener) bool {
	select {
	case <-ln.closed:
		return true
	default:
		return false
	}
}

func hasMember(ms []Member, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

// TestResumeThroughServiceAddress: a client dials the pool through a
// service address (a proxy, as a load balancer or a DNS name would be) and
// its session moves to a member's own address. While the client is offline
// the pool is replaced: a new member joins, the two members the client
// knows crash one after the other, the session's checkpoints reach the new
// member in between. Back online, the client finds none of the members it
// knows; through the service address, which now leads to the new member, it
// resumes there, and nothing is lost either way.
func TestResumeThroughServiceAddress(t *testing.T) {
	tp := startPool(t, 2, func(c *Config) { c.Replicas = 1 })
	defer tp.close()
	svc := newProxy(t, tp.member("m0").Addr().String())
	defer svc.Close()

	var cnet offlineNet
	d := &Dialer{Logger: testLogger(t), DialFunc: cnet.dial, ResumeTimeout: 20 * time.Second}
	c, err := d.Dial("tcp", svc.Addr())
	require.NoError(t, err)
	mc := c.(*Conn)
	require.Equal(t, "m0", mc.MemberName())
	waitMembers(t, c, 2)
	// The session moves to m1: from now on the client reaches it at m1's
	// own address, and knows the pool as m0 and m1.
	require.NoError(t, mc.Migrate(context.Background(), tp.member("m1").Addr().String()))
	require.Equal(t, "m1", mc.MemberName())

	const n = 8 << 20
	var once atomic.Bool
	res := echoTransfer(c, n, 41, func(got int64) {
		if got < n/3 || once.Swap(true) {
			return
		}
		cnet.goDown()
		m2 := tp.addMember("m2", func(c *Config) { c.Replicas = 1 })
		tp.member("m0").crash()
		// m1 copies the session's checkpoints to m2, the only member left
		// to hold them.
		require.Eventually(t, func() bool {
			st := tp.member("m1").Status()
			return len(st.Sessions) == 1 && slices.Equal(st.Sessions[0].Replicas, []string{"m2"}) && m2.Status().CopiesFor == 1
		}, 10*time.Second, 10*time.Millisecond)
		tp.member("m1").crash()
		svc.SetTarget(m2.Addr().String())
		require.False(t, hasMember(mc.Members(), "m2"), "the client has not heard of m2")
		cnet.down.Store(false)
	})
	require.NoError(t, res.ReadErr, "the session resumes")
	requireTransferOK(t, res, n, 41, tp.closeSession(t, c))
	require.Equal(t, "m2", mc.MemberName())
	require.Equal(t, []string{"m0", "m1", "m2"}, tp.apps.servedBy(mc.SessionID()))
}

// TestResumeAttemptOrder: a pool client tries its member's own address
// first, then rounds of the other members it knows (least loaded first) and
// its own member, each round closed by the address it first dialed.
func TestResumeAttemptOrder(t *testing.T) {
	cs := &clientSide{pool: true, member: "b", address: "svc:1", service: "svc:1", members: []Member{
		{Name: "a", Addr: "a:1", Sessions: 5},
		{Name: "b", Addr: "b:1", Sessions: 1},
		{Name: "c", Addr: "c:1", Sessions: 2},
		{Name: "d", Addr: "d:1", Draining: true},
	}}
	var got []string
	for n := 1; n <= 10; n++ {
		got = append(got, cs.attemptAddrLocked(n))
	}
	require.Equal(t, []string{"b:1", "b:1", "c:1", "a:1", "b:1", "svc:1", "c:1", "a:1", "b:1", "svc:1"}, got,
		"reached through the service address, the session is resumed at its member's own address first")

	// Dialed at a member's own address, the session moved: that address is
	// tried once a round, as one of the members.
	cs = &clientSide{pool: true, member: "b", address: "b:1", service: "a:1", members: cs.members}
	got = got[:0]
	for n := 1; n <= 6; n++ {
		got = append(got, cs.attemptAddrLocked(n))
	}
	require.Equal(t, []string{"b:1", "b:1", "c:1", "a:1", "b:1", "c:1"}, got)

	// A standalone session has one address.
	cs = &clientSide{address: "s:1", service: "s:1"}
	require.Equal(t, "s:1", cs.attemptAddrLocked(5))
	require.True(t, cs.ownMemberLocked("s:1"), "a standalone server's refusal is a verdict")
}

// TestResumeVerdicts: only the session's own member's refusal ends a pool
// session; whichever member the service address leads to may not know it.
func TestResumeVerdicts(t *testing.T) {
	members := []Member{{Name: "a", Addr: "a:1"}, {Name: "b", Addr: "b:1"}}
	cs := &clientSide{pool: true, member: "b", address: "svc:1", service: "svc:1", members: members}
	require.True(t, cs.ownMemberLocked("b:1"))
	require.False(t, cs.ownMemberLocked("a:1"))
	require.False(t, cs.ownMemberLocked("svc:1"))

	// Before the pool's list arrives, the service address is still not
	// known to lead to the session's member.
	cs = &clientSide{pool: true, member: "b", address: "svc:1", service: "svc:1"}
	require.False(t, cs.ownMemberLocked("svc:1"))

	// Dialed at the member's own address.
	cs = &clientSide{pool: true, member: "b", address: "b:1", service: "b:1", members: members}
	require.True(t, cs.ownMemberLocked("b:1"))

	// Moved from the address dialed to another member.
	cs = &clientSide{pool: true, member: "a", address: "a:1", service: "b:1", members: members}
	require.True(t, cs.ownMemberLocked("a:1"))
	require.False(t, cs.ownMemberLocked("b:1"))
}
