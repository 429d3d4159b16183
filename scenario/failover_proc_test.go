package scenario

import (
	"encoding/hex"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFailoverSIGKILL runs three member processes; the one serving a
// stateful session is killed with SIGKILL twice during a 12 MiB echo (and
// replaced by a new process). Every byte and the application's state
// arrive intact.
func TestFailoverSIGKILL(t *testing.T) {
	pp := startProcPool(t, 3, []string{"-profile", "local", "-replicas", "1"})
	defer pp.kill()
	mc := pp.dial(t)
	c := net.Conn(mc)

	const n = 12 << 20
	var kills atomic.Int32
	var killedAt time.Time
	var pauses []time.Duration
	res := echoTransfer(c, n, 41, func(got int64) {
		if !killedAt.IsZero() {
			pauses = append(pauses, time.Since(killedAt))
			killedAt = time.Time{}
		}
		k := kills.Load()
		if k >= 2 || got < int64(k+1)*n/3 {
			return
		}
		kills.Add(1)
		serving := mc.MemberName()
		if i := pp.killMember(serving); i >= 0 {
			killedAt = time.Now()
			pp.restart(i)
			return
		}
		t.Errorf("no member named %q", serving)
	})
	if res.ReadErr != nil {
		t.Fatalf("reading: %v\nmembers:\n%s", res.ReadErr, pp.logs())
	}
	require.NoError(t, res.WriteErr)
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
	want := hex.EncodeToString(digestOf(n, 41))
	final := waitFinal(t, pp.members, mc.SessionID())
	require.Equal(t, want, final, "the application's digest covers exactly the input")
	finalBytes, _ := hex.DecodeString(final)
	requireTransferOK(t, res, n, 41, finalBytes)
	require.Equal(t, int32(2), kills.Load())
	t.Logf("failover pauses (kill to the next echoed bytes): %v", pauses)
}

func memberLogs(ms []*memberProc) string {
	out := ""
	for _, m := range ms {
		out += "== " + m.name + "\n" + m.logs()
	}
	return out
}
