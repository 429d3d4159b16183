package mtcp

import (
	"sync"
	"testing"
	"time"
)

// TestDefaultPolicyJudgesEachSessionAlone: sessions that share a policy
// are judged on their own histories, however their checks interleave.
func TestDefaultPolicyJudgesEachSessionAlone(t *testing.T) {
	p := &DefaultPolicy{Settle: time.Millisecond}
	members := []Member{{Name: "m0", Addr: "a0", Sessions: 10}, {Name: "m1", Addr: "a1", Sessions: 1}}
	slow := PolicyStats{Current: members[0], Members: members, Attached: time.Minute,
		Baseline: 1000, Rate: 100, Recent: []float64{1000, 100, 100, 100}}
	busy := PolicyStats{Current: members[0], Members: members, Attached: time.Minute,
		Baseline: 1000, Rate: 1000, Recent: []float64{100, 100, 1000}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if got := p.Check(slow); got != "a1" {
				t.Errorf("slow session: Check = %q, want a1", got)
			}
		}()
		go func() {
			defer wg.Done()
			if got := p.Check(busy); got != "" {
				t.Errorf("busy session: Check = %q, want to stay", got)
			}
		}()
	}
	wg.Wait()
}

func TestDefaultPolicyRules(t *testing.T) {
	members := []Member{{Name: "m0", Addr: "a0", Sessions: 10}, {Name: "m1", Addr: "a1", Sessions: 1}}
	base := PolicyStats{Current: members[0], Members: members, Attached: time.Minute, Baseline: 1000}
	with := func(f func(*PolicyStats)) PolicyStats { s := base; f(&s); return s }
	for _, tc := range []struct {
		name string
		s    PolicyStats
		want string
	}{
		{"settling", with(func(s *PolicyStats) { s.Attached = time.Second; s.Stalled = time.Minute }), ""},
		{"stalled", with(func(s *PolicyStats) { s.Stalled = 5 * time.Second }), "a1"},
		{"low twice", with(func(s *PolicyStats) { s.Recent = []float64{100, 100} }), ""},
		{"low three times", with(func(s *PolicyStats) { s.Recent = []float64{100, 100, 100} }), "a1"},
		{"low, then busy", with(func(s *PolicyStats) { s.Recent = []float64{100, 100, 100, 900} }), ""},
		{"low but no lighter member", with(func(s *PolicyStats) {
			s.Recent = []float64{100, 100, 100}
			s.Members = []Member{{Name: "m0", Addr: "a0", Sessions: 1}, {Name: "m1", Addr: "a1", Sessions: 1}}
			s.Current = s.Members[0]
		}), ""},
		{"no baseline yet", with(func(s *PolicyStats) { s.Baseline = 0; s.Recent = []float64{0, 0, 0} }), ""},
		{"quiet, not slow", with(func(s *PolicyStats) { s.Recent = []float64{0, 0, 0, 0} }), ""},
		{"slow, then quiet", with(func(s *PolicyStats) { s.Recent = []float64{100, 100, 100, 0} }), ""},
	} {
		if got := (&DefaultPolicy{}).Check(tc.s); got != tc.want {
			t.Errorf("%s: Check = %q, want %q", tc.name, got, tc.want)
		}
	}
}
