package pool

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

func TestThreeMembersJoin(t *testing.T) {
	members := startPool(t, "a", "b", "c")
	for _, n := range members {
		for _, other := range members {
			want := other.Local()
			got, ok := n.Member(want.Name)
			require.True(t, ok)
			require.Equal(t, want, got, "%s's view of %s", n.name, want.Name)
			byAddr, ok := n.ByClientAddr(want.ClientAddr)
			require.True(t, ok)
			require.Equal(t, want, byAddr)
		}
		_, ok := n.Member("nobody")
		require.False(t, ok)
		_, ok = n.ByClientAddr("127.0.0.1:1")
		require.False(t, ok)
		require.Positive(t, n.changes.Load(), "%s: OnChange on join", n.name)
	}
	require.Equal(t, "127.0.0.1:20097", members[0].Local().ClientAddr)
	require.Equal(t, "127.0.0.1:21097", members[0].Local().ControlAddr)
	require.Regexp(t, `^127\.0\.0\.1:[1-9][0-9]*$`, members[0].GossipAddr())
}

func TestLoadAndDrainingPropagate(t *testing.T) {
	members := startPool(t, "a", "b", "c")
	a, b, c := members[0], members[1], members[2]

	changes := b.changes.Load()
	// SetLoad must not wait for gossip: with every memberlist update held
	// up (publish cannot take updateMu), SetLoad still returns and the
	// local member shows the new load at once.
	a.updateMu.Lock()
	set := make(chan struct{})
	go func() {
		defer close(set)
		for i := range 10000 {
			a.SetLoad(i%100, uint64(i))
		}
		a.SetLoad(42, 4200)
	}()
	select {
	case <-set:
	case <-time.After(10 * time.Second):
		a.updateMu.Unlock()
		t.Fatal("SetLoad waits for gossip")
	}
	require.Equal(t, 42, a.Local().Sessions)
	require.EqualValues(t, 4200, a.Local().BytesPerSec)
	a.updateMu.Unlock()
	for _, n := range []*testMember{b, c} {
		waitMember(t, n, "a", func(m Member) bool { return m.Sessions == 42 && m.BytesPerSec == 4200 })
	}
	eventually(t, func() bool { return b.changes.Load() > changes }, "OnChange on load update")

	start := time.Now()
	require.NoError(t, a.SetDraining(true))
	t.Logf("SetDraining returned after %v", time.Since(start))
	require.True(t, a.Local().Draining)
	for _, n := range []*testMember{b, c} {
		waitMember(t, n, "a", func(m Member) bool { return m.Draining && m.Sessions == 42 })
	}
	require.NoError(t, a.SetDraining(false))
	for _, n := range []*testMember{b, c} {
		waitMember(t, n, "a", func(m Member) bool { return !m.Draining })
	}
	// Negative sessions count as none.
	a.SetLoad(-5, 0)
	waitMember(t, b, "a", func(m Member) bool { return m.Sessions == 0 && m.BytesPerSec == 0 })
}

func TestShutdownIsDetected(t *testing.T) {
	members := startPool(t, "a", "b", "c")
	a, b, c := members[0], members[1], members[2]
	changes := a.changes.Load()
	start := time.Now()
	require.NoError(t, c.Shutdown())
	waitMembers(t, a, "a", "b")
	t.Logf("a saw c fail after %v", time.Since(start))
	waitMembers(t, b, "a", "b")
	t.Logf("b saw c fail after %v", time.Since(start))
	require.Greater(t, a.changes.Load(), changes, "OnChange on failure")
	// A member that stays dead stays out of the view.
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, []string{"a", "b"}, memberNames(a.Pool))
}

func TestLeaveIsSeen(t *testing.T) {
	members := startPool(t, "a", "b", "c")
	a, b, c := members[0], members[1], members[2]
	changes := b.changes.Load()
	start := time.Now()
	require.NoError(t, c.Leave(time.Second))
	waitMembers(t, a, "a", "b")
	waitMembers(t, b, "a", "b")
	t.Logf("leave seen by both after %v", time.Since(start))
	require.Greater(t, b.changes.Load(), changes, "OnChange on leave")
	require.NoError(t, c.Leave(time.Second), "a second Leave does nothing")
	require.NoError(t, c.SetDraining(true), "after Leave, changes stay local")
	require.NoError(t, c.Shutdown())
}

func TestWrongKeyCannotJoin(t *testing.T) {
	a := startPool(t, "a")[0]
	cfg := testConfig(t, "x", a.GossipAddr())
	cfg.Key = []byte("another pool key, of 32 bytes..")
	p, err := New(cfg)
	require.ErrorContains(t, err, "decrypt")
	require.Nil(t, p)

	// Nor can it be joined: a member of the pool that tries fails too.
	cfg.Join = nil
	x := startMember(t, cfg)
	cfg = testConfig(t, "y", x.GossipAddr())
	_, err = New(cfg)
	require.ErrorContains(t, err, "decrypt")
	t.Log(err)

	time.Sleep(500 * time.Millisecond)
	require.Equal(t, []string{"a"}, memberNames(a.Pool))
	require.Equal(t, []string{"x"}, memberNames(x.Pool))
}

func TestJoinUnreachableFails(t *testing.T) {
	_, err := New(testConfig(t, "a", "127.0.0.1:1"))
	require.ErrorContains(t, err, "join")
}

// badMetaDelegate publishes metadata no version of the format accepts.
type badMetaDelegate struct{}

func (badMetaDelegate) NodeMeta(int) []byte                 { return []byte{0xc1, 0xff, 0x00} }
func (badMetaDelegate) NotifyMsg([]byte)                    {}
func (badMetaDelegate) GetBroadcasts(int, int) [][]byte     { return nil }
func (badMetaDelegate) LocalState(bool) []byte              { return nil }
func (badMetaDelegate) MergeRemoteState(buf []byte, _ bool) {}

func TestBadMetadataIsIgnored(t *testing.T) {
	rec := &recorder{}
	cfg := testConfig(t, "a")
	cfg.Logger = slog.New(rec)
	a := startMember(t, cfg)
	b := startMember(t, testConfig(t, "b", a.GossipAddr()))
	waitMembers(t, a, "a", "b")

	// A process with the pool key but unreadable metadata joins the gossip:
	// it is no member.
	zc := testConfig(t, "z")
	mc, err := zc.memberlistConfig()
	require.NoError(t, err)
	mc.Delegate = badMetaDelegate{}
	ml, err := memberlist.Create(mc)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ml.Shutdown()) })
	_, err = ml.Join([]string{a.GossipAddr()})
	require.NoError(t, err)

	eventually(t, func() bool { return len(rec.find("unreadable metadata")) > 0 }, "warning logged")
	warn := rec.find("unreadable metadata")[0]
	require.Equal(t, slog.LevelWarn, warn.Level)
	require.Equal(t, "z", attr(warn, "member"))
	eventually(t, func() bool { return ml.NumMembers() == 3 }, "z sees the pool")
	require.Equal(t, []string{"a", "b"}, memberNames(a.Pool))
	require.Equal(t, []string{"a", "b"}, memberNames(b.Pool))
}

func TestLogGoesToLoggerOnly(t *testing.T) {
	// Catch anything written to the process's standard error meanwhile:
	// memberlist's default is to log there.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	stderr := os.Stderr
	os.Stderr = w
	restored := false
	restore := func() {
		if !restored {
			os.Stderr = stderr
			restored = true
		}
	}
	t.Cleanup(restore)

	rec := &recorder{}
	cfg := testConfig(t, "a")
	cfg.Logger = slog.New(rec)
	a, err := New(cfg)
	require.NoError(t, err)
	cfg = testConfig(t, "b", a.GossipAddr())
	cfg.Logger = nil
	b, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, b.Leave(time.Second))
	require.NoError(t, b.Shutdown())
	require.NoError(t, a.Shutdown())

	restore()
	require.NoError(t, w.Close())
	leaked, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Empty(t, string(leaked), "written to standard error")

	bind := rec.find("Using dynamic bind port")
	require.NotEmpty(t, bind, "memberlist's log reaches the Logger")
	require.Equal(t, slog.LevelDebug, bind[0].Level)
	require.Equal(t, "memberlist", attr(bind[0], "component"))
	require.Equal(t, "DEBUG", attr(bind[0], "memberlist_level"))
	require.NotContains(t, bind[0].Message, "[DEBUG]")
}

func TestShutdownIsIdempotent(t *testing.T) {
	members := startPool(t, "a", "b")
	a := members[0]
	require.NoError(t, a.Shutdown())
	require.NoError(t, a.Shutdown())
	require.ErrorIs(t, a.Leave(time.Second), ErrClosed)
	require.ErrorIs(t, a.SetDraining(true), ErrClosed)
	a.SetLoad(3, 3)
	require.Equal(t, []string{"a"}, memberNames(a.Pool), "after Shutdown only the local member")
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := testConfig(t, "a")
	taken := startMember(t, testConfig(t, "t"))
	inUse := taken.GossipAddr()
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want error
	}{
		"no key":           {func(c *Config) { c.Key = nil }, ErrNoKey},
		"short key":        {func(c *Config) { c.Key = make([]byte, MinKeyLen-1) }, ErrNoKey},
		"no name":          {func(c *Config) { c.NodeName = "" }, errBadConfig},
		"no bind address":  {func(c *Config) { c.BindAddr = "" }, errBadConfig},
		"bad bind port":    {func(c *Config) { c.BindAddr = "127.0.0.1:99999" }, errBadConfig},
		"client no port":   {func(c *Config) { c.ClientAddr = "127.0.0.1" }, errBadConfig},
		"control too long": {func(c *Config) { c.ControlAddr = string(make([]byte, 300)) + ":1" }, errBadConfig},
		"advertise no IP":  {func(c *Config) { c.AdvertiseAddr = "host.example:1" }, errBadConfig},
		"advertise any":    {func(c *Config) { c.AdvertiseAddr = "0.0.0.0" }, errBadConfig},
		"unknown profile":  {func(c *Config) { c.Profile = 9 }, errBadConfig},
		"bind to a name":   {func(c *Config) { c.BindAddr = "localhost:0" }, errBadConfig},
		"bind in use":      {func(c *Config) { c.BindAddr = inUse }, nil},
	} {
		c := ok
		tc.mod(&c)
		p, err := New(c)
		require.Error(t, err, name)
		require.Nil(t, p, name)
		if tc.want != nil {
			require.True(t, errors.Is(err, tc.want), "%s: %v", name, err)
		}
	}
	// An advertised IP without a port keeps the bound port.
	c := ok
	c.AdvertiseAddr = "127.0.0.1"
	p, err := New(c)
	require.NoError(t, err)
	require.NoError(t, p.Shutdown())
}

func TestOnChangeMayUseThePool(t *testing.T) {
	var self atomic.Pointer[Pool]
	seen := make(chan int, 100)
	cfg := testConfig(t, "a")
	cfg.OnChange = func() {
		if p := self.Load(); p != nil {
			// Not under any lock of the pool's or memberlist's.
			p.SetLoad(len(p.Members()), 0)
			_, _ = p.LeastLoaded()
			select {
			case seen <- len(p.Members()):
			default:
			}
		}
	}
	a, err := New(cfg)
	require.NoError(t, err)
	self.Store(a)
	t.Cleanup(func() { require.NoError(t, a.Shutdown()) })

	b := startMember(t, testConfig(t, "b", a.GossipAddr()))
	waitMembers(t, b, "a", "b")
	eventually(t, func() bool { return a.Local().Sessions == 2 }, "OnChange ran with both members")
	waitMember(t, b, "a", func(m Member) bool { return m.Sessions == 2 })
	require.NotEmpty(t, seen)
}

// TestGoneRemembersDraining: a member that leaves the view (declared dead)
// is remembered as it was last seen, draining flag included, for a while:
// a takeover of its sessions still asks it for them rather than failing
// them over at once.
func TestGoneRemembersDraining(t *testing.T) {
	members := startPool(t, "a", "b")
	require.NoError(t, members[1].SetDraining(true))
	waitMember(t, members[0], "b", func(m Member) bool { return m.Draining })
	_, ok := members[0].Gone("b", time.Minute)
	require.False(t, ok, "b is in the view")
	require.NoError(t, members[1].Shutdown()) // no leave: declared dead
	waitMembers(t, members[0], "a")
	m, ok := members[0].Gone("b", time.Minute)
	require.True(t, ok)
	require.True(t, m.Draining)
	require.NotEmpty(t, m.ControlAddr)
	_, ok = members[0].Gone("b", 0)
	require.False(t, ok, "gone for longer than asked")
}
