package scenario

import (
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/testenv"
)

// netns is a network namespace joined to the host by a veth pair.
type netns struct {
	t        *testing.T
	name     string
	hostIP   string // the host's end
	insideIP string // the namespace's end
	inside   string // the namespace's interface
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "%s: %s", strings.Join(args, " "), out)
}

// netnsCount numbers the namespaces of this process.
var netnsCount atomic.Int32

// newNetns makes a namespace at 10.250.N.2 reachable from the host's
// 10.250.N.1, and removes it when the test ends.
func newNetns(t *testing.T) *netns {
	testenv.Root(t, "network namespaces and nftables")
	testenv.Command(t, "ip", "iproute2")
	testenv.Command(t, "nft", "nftables")
	id := int(netnsCount.Add(1)+int32(os.Getpid())) % 200
	n := &netns{t: t, name: fmt.Sprintf("mtcpfence%d", id),
		hostIP: fmt.Sprintf("10.250.%d.1", id), insideIP: fmt.Sprintf("10.250.%d.2", id),
		inside: fmt.Sprintf("mtf%db", id)}
	host := fmt.Sprintf("mtf%da", id)
	// Leftovers of an interrupted run.
	_ = exec.Command("ip", "netns", "del", n.name).Run()
	_ = exec.Command("ip", "link", "del", host).Run()
	sh(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", host).Run()
		_ = exec.Command("ip", "netns", "del", n.name).Run()
	})
	sh(t, "ip", "link", "add", host, "type", "veth", "peer", "name", n.inside)
	sh(t, "ip", "link", "set", n.inside, "netns", n.name)
	sh(t, "ip", "addr", "add", n.hostIP+"/30", "dev", host)
	sh(t, "ip", "link", "set", host, "up")
	sh(t, "ip", "netns", "exec", n.name, "ip", "addr", "add", n.insideIP+"/30", "dev", n.inside)
	sh(t, "ip", "netns", "exec", n.name, "ip", "link", "set", n.inside, "up")
	sh(t, "ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// isolate drops every packet in and out of the namespace, silently.
func (n *netns) isolate() {
	rules := fmt.Sprintf(`table inet fence {
	chain in { type filter hook input priority 0; policy accept; iifname %q drop; }
	chain out { type filter hook output priority 0; policy accept; oifname %q drop; }
}`, n.inside, n.inside)
	cmd := exec.Command("ip", "netns", "exec", n.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	out, err := cmd.CombinedOutput()
	require.NoError(n.t, err, "nft: %s", out)
}

// heal removes the drop rules.
func (n *netns) heal() {
	sh(n.t, "ip", "netns", "exec", n.name, "nft", "delete", "table", "inet", "fence")
}

// TestFencingOfACutOffMember: the member serving a session is cut off from
// everyone (its packets silently dropped) while it keeps running; the client
// resumes on another member, which takes the session from the replicas. When
// the cut-off member comes back, it can neither deliver a byte to the client
// nor commit a checkpoint: its copy of the session is fenced and ends. It
// comes back either while the session runs on its successor, or after the
// session ended there (its replicas then remember only its last epoch).
func TestFencingOfACutOffMember(t *testing.T) {
	t.Run("back while the session runs", func(t *testing.T) { testFencing(t, false) })
	t.Run("back after the session ended", func(t *testing.T) { testFencing(t, true) })
}

func testFencing(t *testing.T, backAfterEnd bool) {
	ns := newNetns(t)
	hostArgs := []string{"-profile", "local", "-replicas", "1", "-debug",
		"-listen", ns.hostIP + ":0", "-gossip", ns.hostIP + ":0"}
	pp := &procPool{t: t}
	defer pp.kill()
	f1 := startMember(t, "f1", nil, hostArgs)
	pp.members = append(pp.members, f1)
	pp.members = append(pp.members, startMember(t, "f2", []string{f1.gossip}, hostArgs))
	f0 := startMember(t, "f0", []string{f1.gossip}, []string{"-profile", "local", "-replicas", "1", "-debug",
		"-listen", ns.insideIP + ":0", "-gossip", ns.insideIP + ":0"}, "ip", "netns", "exec", ns.name)
	pp.members = append(pp.members, f0)

	d := &mtcp.Dialer{Logger: testLogger(t), KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: 600 * time.Millisecond,
		HandshakeTimeout: 500 * time.Millisecond}
	mc := dialPool(t, d, f0.addr, 3)
	c := net.Conn(mc)
	require.Equal(t, "f0", mc.MemberName())

	const n = 16 << 20
	var step atomic.Int32
	res := echoPaced(c, n, 51, 6<<20, func(got int64) {
		switch {
		case got >= n/4 && step.CompareAndSwap(0, 1):
			ns.isolate() // f0 is cut off, and keeps running
		case got >= 3*n/4 && !backAfterEnd && step.CompareAndSwap(1, 2):
			ns.heal() // f0 is back while the session runs on its successor
		}
	})
	if res.ReadErr != nil {
		t.Fatalf("reading: %v\n%s", res.ReadErr, pp.logs())
	}
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
	require.NotEqual(t, "f0", mc.MemberName(), "the session left the cut-off member")
	want := hex.EncodeToString(digestOf(n, 51))
	final := waitFinal(t, pp.members, mc.SessionID())
	require.Equal(t, want, final)
	got, _ := hex.DecodeString(final)
	requireTransferOK(t, res, n, 51, got)
	_, ok := f0.final(mc.SessionID())
	require.False(t, ok, "the cut-off member never saw the end of the session")
	if backAfterEnd {
		ns.heal()
	}

	// Back in touch, f0 finds out that its copy of the session was taken over:
	// a replica refuses its checkpoints, and the session ends there.
	if !assert.Eventually(t, func() bool { return f0.sessionFailed(mc.SessionID(), "moved") }, 15*time.Second, 50*time.Millisecond,
		"the cut-off member's session is fenced") {
		t.Fatalf("members' logs:\n%s", pp.logs())
	}
	require.Contains(t, f0.logs(), "session fenced")
}
