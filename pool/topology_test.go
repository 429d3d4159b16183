package pool

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTopologyIgnoresLoad: load changes reach the other members without
// counting as a change of topology; draining, a member leaving and one
// joining count.
func TestTopologyIgnoresLoad(t *testing.T) {
	members := startPool(t, "a", "b")
	a, b := members[0], members[1]
	before := a.Topology()

	b.SetLoad(42, 1000)
	waitMember(t, a, "b", func(m Member) bool { return m.Sessions == 42 })
	require.Equal(t, before, a.Topology(), "a load change is not a change of topology")

	require.NoError(t, b.SetDraining(true))
	waitMember(t, a, "b", func(m Member) bool { return m.Draining })
	afterDrain := a.Topology()
	require.Greater(t, afterDrain, before, "draining is")
	require.Greater(t, b.Topology(), uint64(0), "on the member that drains too")

	c := startMember(t, testConfig(t, "c", a.GossipAddr()))
	waitMembers(t, a, "a", "b", "c")
	afterJoin := a.Topology()
	require.Greater(t, afterJoin, afterDrain, "a member joining is")

	require.NoError(t, c.Leave(waitLimit))
	waitMembers(t, a, "a", "b")
	require.Greater(t, a.Topology(), afterJoin, "a member leaving is")
}
