package pool

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProfiles(t *testing.T) {
	require.Equal(t, ProfileLAN, Profile(0))
	for _, p := range []Profile{ProfileLAN, ProfileLocal, ProfileWAN} {
		mc := p.memberlistConfig()
		tm := p.timings()
		require.Less(t, mc.ProbeTimeout, mc.ProbeInterval, p.String())
		require.Less(t, mc.GossipInterval, tm.loadEvery, p.String())
		require.Positive(t, tm.updateWait, p.String())

		cfg := testConfig(t, "a")
		cfg.Profile = p
		pl, err := New(cfg)
		require.NoError(t, err, p.String())
		require.NoError(t, pl.Shutdown())
	}
	local := ProfileLocal.memberlistConfig()
	require.Equal(t, 100*time.Millisecond, local.ProbeInterval)
	require.Equal(t, "unknown", Profile(7).String())
}
