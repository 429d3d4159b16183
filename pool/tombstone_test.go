package pool

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/snapshot"
)

func TestOnlyTheSuccessorSettlesAHandover(t *testing.T) {
	var ts tombstones
	ts.init(time.Minute)
	id := auth.SessionID()
	ts.bury(id, Member{Name: "m1", ClientAddr: "127.0.0.1:1"}, 2, &snapshot.Record{}, handoverReply{})
	unsettled := func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return ts.moved[id].reply != nil
	}

	require.False(t, ts.settled(id, 2, "m2"), "a member that is not the successor")
	require.True(t, unsettled(), "the answer is kept for the successor")
	require.False(t, ts.settled(id, 3, "m1"), "another epoch")
	require.False(t, ts.settled(auth.SessionID(), 2, "m1"), "another session")
	require.True(t, unsettled())

	require.True(t, ts.settled(id, 2, "m1"))
	require.False(t, unsettled(), "the successor's settle forgets the answer")
	ts.mu.Lock()
	require.Equal(t, "m1", ts.moved[id].Member, "the redirect stays")
	ts.mu.Unlock()
}
