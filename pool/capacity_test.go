package pool

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLoadsWeighHowMembersServe: a member whose sessions get a tenth of the
// pool's pace counts as holding ten times its sessions; one that serves
// them at about the pool's pace, or carries no traffic, counts its
// sessions.
func TestLoadsWeighHowMembersServe(t *testing.T) {
	loads := Loads([]Member{
		{Name: "a", Sessions: 100, BytesPerSec: 100 * 1000},
		{Name: "b", Sessions: 100, BytesPerSec: 100 * 800},
		{Name: "slow", Sessions: 100, BytesPerSec: 100 * 100},
		{Name: "idle"},
	})
	require.InDelta(t, 100, loads[0], 0.01)
	require.InDelta(t, 100, loads[1], 0.01)
	// The pool's pace: 190,000 B/s over 300 sessions; slow's is 100.
	require.InDelta(t, 100/(100/(190000.0/300)), loads[2], 0.01)
	require.Greater(t, loads[2], 500.0)
	require.Zero(t, loads[3])

	quiet := Loads([]Member{{Sessions: 5}, {Sessions: 7}})
	require.Equal(t, []float64{5, 7}, quiet)
}

// TestSpareFillsToALevel: sessions added to members go to those below the
// level their loads reach, each its difference.
func TestSpareFillsToALevel(t *testing.T) {
	w := Spare([]float64{300, 0, 100}, 600)
	// Level 333⅓: 33⅓, 333⅓, 233⅓.
	require.InDelta(t, 33.33, w[0], 0.1)
	require.InDelta(t, 333.33, w[1], 0.1)
	require.InDelta(t, 233.33, w[2], 0.1)
	w = Spare([]float64{500, 0}, 100)
	require.InDelta(t, 0, w[0], 0.01)
	require.InDelta(t, 100, w[1], 0.01)
}

// TestDrainPlanSpreadsConsecutiveMoves: consecutive sessions of a drain go
// to different members, in proportion to their shares.
func TestDrainPlanSpreadsConsecutiveMoves(t *testing.T) {
	p := planDrain([]Member{{Name: "self", Sessions: 90}, {Name: "b"}, {Name: "c", Sessions: 30}, {Name: "d", Draining: true}}, "self", 90)
	// Level 60: b takes 60, c 30.
	got := map[string]int{}
	var first []string
	for i := range 90 {
		m, ok := p.next()
		require.True(t, ok)
		got[m.Name]++
		if i < 3 {
			first = append(first, m.Name)
		}
	}
	require.Equal(t, map[string]int{"b": 60, "c": 30}, got)
	require.ElementsMatch(t, []string{"b", "b", "c"}, first)
}

// TestWeightedPick draws in proportion to the weights.
func TestWeightedPick(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	got := make([]int, 3)
	for range 3000 {
		got[weightedPick([]float64{1, 0, 2}, r.Float64)]++
	}
	require.Zero(t, got[1])
	require.InDelta(t, 1000, got[0], 150)
	require.InDelta(t, 2000, got[2], 150)
	require.Equal(t, -1, weightedPick(nil, r.Float64))
}

// TestFairSharesByPace: the pool's sessions are shared in proportion to
// how fast each member serves them; a draining member counts neither.
func TestFairSharesByPace(t *testing.T) {
	members := []Member{
		{Name: "a", Sessions: 100, BytesPerSec: 100 * 1000},
		{Name: "b", Sessions: 100, BytesPerSec: 100 * 1000},
		{Name: "slow", Sessions: 100, BytesPerSec: 100 * 100},
		{Name: "leaving", Sessions: 50, BytesPerSec: 50 * 1000, Draining: true},
	}
	// The pool's pace: 260,000 B/s over 350 sessions (≈ 743 each); slow's
	// is 100, a pace of ≈ 0.135: the 300 sessions over 2.135.
	paces := Paces(members)
	level := Fair(members, paces)
	pace := 100 / (260000.0 / 350)
	require.InDelta(t, 300/(2+pace), level, 0.01)
	require.InDelta(t, 300*pace/(2+pace), level*paces[2], 0.01)
	require.Zero(t, Fair(nil, nil))
}

// TestSpareWeightsFavourFastMembers: of two members as loaded, one that
// serves at a tenth of the pace is chosen a tenth as often.
func TestSpareWeightsFavourFastMembers(t *testing.T) {
	w := spareWeights([]float64{100, 100, 400}, []float64{1, 0.1, 1}, 300)
	require.InDelta(t, 0.1*w[0], w[1], 0.01)
	require.InDelta(t, 1, w[2], 0.01, "a member above the level keeps a small weight")
	require.Greater(t, w[0], 100.0)
}
