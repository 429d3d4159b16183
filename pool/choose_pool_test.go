package pool

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReplicas(t *testing.T) {
	members := startPool(t, "a", "b", "c", "d", "e")
	a, b, d, e := members[0], members[1], members[3], members[4]
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprint("session-", i)
	}

	// Deterministic, local member excluded, excluded names honoured.
	for _, k := range keys {
		r := names(a.Replicas(k, 2))
		require.Len(t, r, 2)
		require.NotContains(t, r, "a")
		require.Equal(t, r, names(a.Replicas(k, 2)))
		// Two members that leave out the same set choose alike.
		require.Equal(t, names(a.Replicas(k, 2, "b")), names(b.Replicas(k, 2, "a")))
		ex := names(a.Replicas(k, 2, r[0]))
		require.NotContains(t, ex, r[0])
		require.Equal(t, r[1], ex[0], "excluding the first moves the second up")
	}
	require.Len(t, a.Replicas("k", 10), 4, "no more than the candidates")
	require.Empty(t, a.Replicas("k", 0))
	require.Empty(t, a.Replicas("k", 3, "b", "c", "d", "e"))

	// Draining members are not chosen.
	require.NoError(t, d.SetDraining(true))
	waitMember(t, a, "d", func(m Member) bool { return m.Draining })
	for _, k := range keys {
		require.NotContains(t, names(a.Replicas(k, 3)), "d")
	}
	require.NoError(t, d.SetDraining(false))
	waitMember(t, a, "d", func(m Member) bool { return !m.Draining })

	// A member leaves: only the keys it held move, and they keep the rest.
	before := make(map[string][]string)
	for _, k := range keys {
		before[k] = names(a.Replicas(k, 2))
	}
	require.NoError(t, e.Leave(time.Second))
	require.NoError(t, e.Shutdown())
	waitMembers(t, a, "a", "b", "c", "d")
	moved := 0
	for _, k := range keys {
		after := names(a.Replicas(k, 2))
		if !slices.Contains(before[k], "e") {
			require.Equal(t, before[k], after, k)
			continue
		}
		moved++
		require.NotContains(t, after, "e")
		kept := slices.DeleteFunc(slices.Clone(before[k]), func(n string) bool { return n == "e" })
		require.Equal(t, kept[0], after[0], k)
	}
	t.Logf("%d of %d keys moved", moved, len(keys))
	require.Positive(t, moved)
}

func TestLeastLoaded(t *testing.T) {
	members := startPool(t, "a", "b", "c")
	a, b, c := members[0], members[1], members[2]
	a.SetLoad(5, 0)
	b.SetLoad(2, 100)
	c.SetLoad(2, 50)
	waitMember(t, a, "b", func(m Member) bool { return m.Sessions == 2 })
	waitMember(t, a, "c", func(m Member) bool { return m.Sessions == 2 })

	least := func(exclude ...string) string {
		m, ok := a.LeastLoaded(exclude...)
		if !ok {
			return ""
		}
		return m.Name
	}
	require.Equal(t, "b", least(), "ties go to the smaller name")
	require.Equal(t, "c", least("b"))
	require.Equal(t, "a", least("b", "c"), "the local member is a candidate")
	require.Equal(t, "", least("a", "b", "c"))

	require.NoError(t, b.SetDraining(true))
	waitMember(t, a, "b", func(m Member) bool { return m.Draining })
	require.Equal(t, "c", least())
	c.SetLoad(9, 0)
	waitMember(t, a, "c", func(m Member) bool { return m.Sessions == 9 })
	require.Equal(t, "a", least())
	require.NoError(t, a.SetDraining(true))
	require.Equal(t, "c", least(), "the local member draining is no candidate")
}
