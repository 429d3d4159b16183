package pool

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/snapshot"
)

// fencedSession is a fakeSession that records the fences it is told of.
type fencedSession struct {
	*fakeSession
	mu     sync.Mutex
	fences []string
}

func (s *fencedSession) Fence(epoch uint64, by string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fences = append(s.fences, fmt.Sprintf("%s@%d", by, epoch))
}

func (s *fencedSession) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.fences...)
}

// TestCopyOfNewerEpochClaims: a checkpoint copy of a newer epoch than its
// replica knows claims that epoch there, as a claim does (the member that
// took a session over sends its replicas no claim apart): a session the
// replica still serves at an older epoch is fenced, and the answer of a
// handover it made is not given again. Copies of an epoch known already
// fence nothing.
func TestCopyOfNewerEpochClaims(t *testing.T) {
	members, hosts := startFakeMembers(t, RuntimeConfig{HandshakeTimeout: 5 * time.Second, Replicas: 1}, "a", "b")
	a, b := members[0], members[1]
	id := sessionID{9, 1}
	s := &fencedSession{fakeSession: &fakeSession{id: id}}
	hosts[1].addAs(s.fakeSession, s)
	gone := sessionID{9, 2}
	succ, ok := b.Membership().Member("a")
	require.True(t, ok)
	b.tombs.bury(gone, succ, 2, &snapshot.Record{Session: gone, Epoch: 2}, handoverReply{Epoch: 2})

	bAddr := b.Membership().Local().ControlAddr
	send := func(session sessionID, epoch, seq uint64) {
		t.Helper()
		rec := &snapshot.Record{Session: session, Epoch: epoch, Seq: seq, Origin: "a"}
		body, err := rec.Marshal()
		require.NoError(t, err)
		req := copyRequest{Record: body, Keep: []uint64{seq}}
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		require.NoError(t, a.call(ctx, bAddr, KindReplicate, msgpack.RawMessage(req.appendMsgpack(nil)), nil))
	}
	send(id, 2, 1)
	require.Equal(t, []string{"a@2"}, s.seen(), "the served session is fenced by the copy's epoch")
	send(id, 2, 2)
	require.Equal(t, []string{"a@2"}, s.seen(), "a copy of the epoch known fences nothing more")
	send(id, 3, 3)
	require.Equal(t, []string{"a@2", "a@3"}, s.seen())

	require.Equal(t, 1, b.Unsettled(), "the handover's answer is kept")
	send(gone, 3, 1)
	require.Equal(t, 0, b.Unsettled(), "a newer epoch's copy supersedes the handover's answer")
}
