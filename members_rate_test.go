package mtcp

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recordingPolicy stays put and records the member list of each check.
type recordingPolicy struct {
	mu   sync.Mutex
	last []Member
}

func (p *recordingPolicy) MoveRequested(string, MoveReason) string { return "" }

func (p *recordingPolicy) Check(s PolicyStats) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = s.Members
	return ""
}

func (p *recordingPolicy) members() []Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// TestMembersCarryRates: a client streams through its member; the member
// list its policy sees (MEMBERS) shows that member's bytes per second,
// and none for the member that serves nothing.
func TestMembersCarryRates(t *testing.T) {
	tp := startPool(t, 2, nil)
	defer tp.close()
	rec := &recordingPolicy{}
	mc := tp.dial(t, &Dialer{Logger: testLogger(t), Policy: rec}, "m0")
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(io.Discard, mc)
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 16<<10)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := mc.Write(buf); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() {
		close(done)
		_ = mc.Close()
		wg.Wait()
	}()
	require.Eventually(t, func() bool {
		var m0, m1 *Member
		for _, m := range rec.members() {
			switch m.Name {
			case "m0":
				m0 = &m
			case "m1":
				m1 = &m
			}
		}
		return m0 != nil && m1 != nil && m0.BytesPerSec > 100<<10 && m0.Sessions == 1 && m1.BytesPerSec == 0
	}, 20*time.Second, 50*time.Millisecond, "the client sees m0's rate and m1's none")
}

// TestMembersShowBalancing: a member that balances says so of itself in
// the member list its clients get (its clients then leave moves for load
// to it), and of no other member; so does its Listener.Members.
func TestMembersShowBalancing(t *testing.T) {
	tp := startPool(t, 2, func(c *Config) { c.Balance = &Balance{Interval: time.Hour} })
	defer tp.close()
	rec := &recordingPolicy{}
	mc := tp.dial(t, &Dialer{Logger: testLogger(t), Policy: rec}, "m1")
	defer mc.Close()
	require.Eventually(t, func() bool {
		got := map[string]bool{}
		for _, m := range rec.members() {
			got[m.Name] = m.Balancing
		}
		return len(got) == 2 && got["m1"] && !got["m0"]
	}, 20*time.Second, 50*time.Millisecond, "m1 shows itself balancing, and m0 not")
	for _, self := range []string{"m0", "m1"} {
		got := map[string]bool{}
		for _, m := range tp.member(self).Members() {
			got[m.Name] = m.Balancing
		}
		require.Equal(t, map[string]bool{"m0": self == "m0", "m1": self == "m1"}, got, "%s's Members", self)
	}
}
