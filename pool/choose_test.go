package pool

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func named(names ...string) []Member {
	out := make([]Member, len(names))
	for i, n := range names {
		out[i] = Member{Name: n}
	}
	return out
}

func names(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func TestRendezvousIgnoresOrderAndCount(t *testing.T) {
	ms := named("a", "b", "c", "d", "e")
	rev := slices.Clone(ms)
	slices.Reverse(rev)
	for i := range 100 {
		key := fmt.Sprint("key", i)
		want := names(rendezvous(key, 3, slices.Clone(ms)))
		require.Len(t, want, 3)
		require.Equal(t, want, names(rendezvous(key, 3, slices.Clone(rev))))
		// A shorter list is a prefix of the longer one.
		require.Equal(t, want[:1], names(rendezvous(key, 1, slices.Clone(ms))))
	}
	require.Len(t, rendezvous("k", 10, named("a", "b")), 2)
	require.Empty(t, rendezvous("k", 2, nil))
}

// TestRendezvousMovesMinimally checks the rendezvous property: removing a
// member changes only the keys whose choice held it, and those keep their
// other members; adding one changes only the keys it enters.
func TestRendezvousMovesMinimally(t *testing.T) {
	all := named("n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7")
	without := slices.DeleteFunc(slices.Clone(all), func(m Member) bool { return m.Name == "n3" })
	moved := 0
	for i := range 2000 {
		key := fmt.Sprint("session-", i)
		before := names(rendezvous(key, 2, slices.Clone(all)))
		after := names(rendezvous(key, 2, slices.Clone(without)))
		if !slices.Contains(before, "n3") {
			require.Equal(t, before, after, key)
			continue
		}
		moved++
		kept := slices.DeleteFunc(slices.Clone(before), func(n string) bool { return n == "n3" })
		require.Equal(t, kept[0], after[0], key)
	}
	// n3 is in about 2/8 of the choices.
	require.InDelta(t, 500, moved, 100)
}

func TestRendezvousSpreadsKeys(t *testing.T) {
	ms := named("a", "b", "c", "d", "e")
	count := map[string]int{}
	for i := range 10000 {
		count[rendezvous(fmt.Sprint(i), 1, slices.Clone(ms))[0].Name]++
	}
	for _, m := range ms {
		require.InDelta(t, 2000, count[m.Name], 300, "%v", count)
	}
}

func TestWeightIsFixed(t *testing.T) {
	// Every member must compute the same weights, in every version.
	require.Equal(t, uint64(0x2276aefc20647ea5), weight("key", "node"), "%#x", weight("key", "node"))
	require.NotEqual(t, weight("ab", "c"), weight("b", "ac"))
}

// TestChooseCountsComingSessionsAsTheyAre: a member that serves at a sixth
// of the pool's pace sends its 300 sessions away to members holding 0, 200
// and 200. They come as 300 sessions, not as the load they weighed on the
// slow member (300 over its pace): the level they bring the three to is
// about 211, so nearly all go to the empty member. Counted over the slow
// member's pace, they would raise the level to about 380, and the empty
// member would take only about half. A draining member, and those left
// out, are never chosen.
func TestChooseCountsComingSessionsAsTheyAre(t *testing.T) {
	members := []Member{
		{Name: "slow", Sessions: 300, BytesPerSec: 300 * 100},
		{Name: "a"},
		{Name: "b", Sessions: 200, BytesPerSec: 200 * 1000},
		{Name: "c", Sessions: 200, BytesPerSec: 200 * 1000},
		{Name: "leaving", Draining: true},
	}
	paces := Paces(members)
	require.Less(t, paces[0], clearlySlow)
	r := rand.New(rand.NewPCG(7, 8))
	got := map[string]int{}
	for range 1000 {
		i := Choose(members, paces, func(i int) bool { return i != 0 && !members[i].Draining }, r.Float64)
		require.GreaterOrEqual(t, i, 1)
		got[members[i].Name]++
	}
	t.Logf("to members holding 0, 200, 200: %v", got)
	require.Greater(t, got["a"], 800, "the empty member takes nearly all: %v", got)
	require.Zero(t, got["leaving"])
	require.Equal(t, -1, Choose(members, paces, func(int) bool { return false }, r.Float64))
}
