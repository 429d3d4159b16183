package mtcp

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestChooseMemberSpreads: 400 clients of a member, judging from the same
// view, choose where to move: they spread over the three other members in
// proportion to what each lacks of an even share, instead of all choosing
// one; a draining member and the one they leave are never chosen.
func TestChooseMemberSpreads(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	choose := func(members []Member) map[string]int {
		got := map[string]int{}
		for range 400 {
			m, ok := chooseMember(members, "m0", r.Float64)
			require.True(t, ok)
			got[m.Name]++
		}
		return got
	}
	even := choose([]Member{{Name: "m0", Sessions: 400}, {Name: "m1"}, {Name: "m2"}, {Name: "m3"}, {Name: "m4", Draining: true}})
	t.Logf("to three empty members: %v", even)
	require.Len(t, even, 3)
	for _, name := range []string{"m1", "m2", "m3"} {
		require.InDelta(t, 400.0/3, even[name], 400.0/3*0.25, "%s's share of %v", name, even)
	}
	// m1 holds 200 already: the level the 400 sessions bring the three to
	// is 200, which m1 has: the others take nearly all of them.
	uneven := choose([]Member{{Name: "m0", Sessions: 400}, {Name: "m1", Sessions: 200}, {Name: "m2"}, {Name: "m3"}})
	t.Logf("to members holding 200, 0, 0: %v", uneven)
	require.Less(t, uneven["m1"], 20)
	require.InDelta(t, 200, uneven["m2"], 50)
	require.InDelta(t, 200, uneven["m3"], 50)

	// m1 holds as few sessions as m2 and m3, but its rate shows it serves
	// them at a tenth of the pace: it takes far fewer.
	slow := choose([]Member{{Name: "m0", Sessions: 400, BytesPerSec: 400 * 1000}, {Name: "m1", Sessions: 50, BytesPerSec: 50 * 100},
		{Name: "m2", Sessions: 50, BytesPerSec: 50 * 1000}, {Name: "m3", Sessions: 50, BytesPerSec: 50 * 1000}})
	t.Logf("to members holding 50 each, one of them slow: %v", slow)
	require.Less(t, slow["m1"], 20)
	require.InDelta(t, 200, slow["m2"], 50)
	require.InDelta(t, 200, slow["m3"], 50)

	// m1's sessions get half the pace of the others' (as when it just took
	// them and they restore): it is not passed over.
	half := choose([]Member{{Name: "m0", Sessions: 400, BytesPerSec: 400 * 1000}, {Name: "m1", Sessions: 50, BytesPerSec: 50 * 500},
		{Name: "m2", Sessions: 50, BytesPerSec: 50 * 1000}, {Name: "m3", Sessions: 50, BytesPerSec: 50 * 1000}})
	t.Logf("to members holding 50 each, one of them at half the pace: %v", half)
	for _, name := range []string{"m1", "m2", "m3"} {
		require.InDelta(t, 400.0/3, half[name], 400.0/3*0.25, "%s's share of %v", name, half)
	}

	_, ok := chooseMember([]Member{{Name: "m0"}, {Name: "m1", Draining: true}}, "m0", r.Float64)
	require.False(t, ok)
}
