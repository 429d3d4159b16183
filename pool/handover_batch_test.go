package pool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/poolhook"
	"github.com/migratory/mtcp/internal/wire"
	"github.com/migratory/mtcp/snapshot"
	"github.com/migratory/mtcp/transport"
)

// handingSession is a fake session that hands itself over.
type handingSession struct {
	fakeSession
	secret auth.Secret
}

func (s *handingSession) Secret() auth.Secret { return s.secret }

func (s *handingSession) HandOver(_ context.Context, _ *HandoverRequest, _ string, commit func(*snapshot.Record, uint64)) error {
	commit(&snapshot.Record{Session: s.id, Epoch: 1, Seq: 1, Secret: snapshot.Secret(s.secret)}, 2)
	s.host.remove(s.id)
	return nil
}

// signedRequest is the handover request of session id's client.
func signedRequest(id sessionID, secret auth.Secret, origin string) HandoverRequest {
	req := HandoverRequest{Session: id, Origin: origin, Attempt: 1, Epoch: 1}
	rs := auth.Resume{Session: req.Session, ClientNonce: req.ClientNonce, ServerNonce: req.ServerNonce,
		Epoch: req.Epoch, Attempt: req.Attempt, Origin: req.Origin}
	req.MAC = rs.ClientMAC(secret, (&wire.Proof{Positions: req.Positions(), Known: req.Known}).Fields())
	return req
}

// TestHandoversGoTogether: while maxBatchesInFlight handover calls to a
// member are under way, the handover requests for that member that come
// meanwhile wait and go together in one call; each gets its own answer.
func TestHandoversGoTogether(t *testing.T) {
	members, hosts := startFakeMembers(t, RuntimeConfig{HandshakeTimeout: 5 * time.Second}, "a", "b")
	const sessions = 20
	reqs := make([]HandoverRequest, sessions)
	for i := range sessions {
		s := &handingSession{fakeSession: fakeSession{id: sessionID{4, byte(i)}}, secret: auth.Secret{byte(i), 9}}
		hosts[0].addAs(&s.fakeSession, s)
		reqs[i] = signedRequest(s.id, s.secret, "a")
	}
	// The first calls are held until every other request waits.
	var singles, batches atomic.Int64
	release, free := releaser(t)
	defer holdCalls(members[0], KindHandover, &singles, release)()
	defer poolhook.Set(members[0], KindHandovers, func(h transport.Handler) transport.Handler {
		return func(ctx context.Context, from string, decode func(any) error) (any, error) {
			batches.Add(1)
			return h(ctx, from, decode)
		}
	})()
	a, _ := members[1].Membership().Member("a")
	var wg sync.WaitGroup
	errs := make([]error, sessions)
	replies := make([]handoverReply, sessions)
	for i := range maxBatchesInFlight {
		wg.Go(func() { replies[i], errs[i] = members[1].callHandover(context.Background(), a, reqs[i]) })
		eventually(t, func() bool { return singles.Load() == int64(i+1) }, "call %d reaches a", i)
	}
	for i := maxBatchesInFlight; i < sessions; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			replies[i], errs[i] = members[1].callHandover(ctx, a, reqs[i])
		}()
	}
	eventually(t, func() bool {
		b := &members[1].batches
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.queues[a.ControlAddr].waiting) == sessions-maxBatchesInFlight
	}, "the other requests wait")
	free()
	wg.Wait()
	for i := range sessions {
		require.NoError(t, errs[i], "session %d", i)
		rec, err := snapshot.Unmarshal(replies[i].Record, 0)
		require.NoError(t, err)
		require.Equal(t, reqs[i].Session, rec.Session)
		require.Equal(t, uint64(2), replies[i].Epoch)
	}
	require.EqualValues(t, maxBatchesInFlight, singles.Load())
	require.EqualValues(t, 1, batches.Load())
	require.Zero(t, hosts[0].SessionCount())
}

// TestHandoverToStranger: a member asked for a session by a member it does
// not see in the pool (not yet, or gone from its view for a moment) answers
// not_member and keeps the session: the successor refuses its client busy,
// it does not take the session from the replicas while it is served.
func TestHandoverToStranger(t *testing.T) {
	members, hosts := startFakeMembers(t, RuntimeConfig{HandshakeTimeout: 5 * time.Second}, "a")
	s := &handingSession{fakeSession: fakeSession{id: sessionID{5, 1}}, secret: auth.Secret{5, 9}}
	hosts[0].addAs(&s.fakeSession, s)
	_, err := members[0].handOver(context.Background(), "stranger", signedRequest(s.id, s.secret, "a"))
	var ce *ControlError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, CodeNotMember, ce.Code)
	require.Equal(t, 1, hosts[0].SessionCount(), "the session stays")
}

// failingHandover is a fake session whose handover fails with err.
type failingHandover struct {
	handingSession
	err error
}

func (s *failingHandover) HandOver(context.Context, *HandoverRequest, string, func(*snapshot.Record, uint64)) error {
	return s.err
}

// TestBatchedHandoverRefusedAsAlone: a handover that fails within a batch
// is answered with the code a lone KindHandover call's handler gives its
// error (deadline_exceeded here), not a code of the batch's own.
func TestBatchedHandoverRefusedAsAlone(t *testing.T) {
	members, hosts := startFakeMembers(t, RuntimeConfig{HandshakeTimeout: 5 * time.Second}, "a", "b")
	fail := fmt.Errorf("waiting for the session: %w", context.DeadlineExceeded)
	s := &failingHandover{handingSession{fakeSession{id: sessionID{6, 1}}, auth.Secret{6, 9}}, fail}
	hosts[0].addAs(&s.fakeSession, s)
	req := handoversRequest{List: []HandoverRequest{signedRequest(s.id, s.secret, "a")}}
	out, err := members[0].handleHandovers(context.Background(), "b", func(v any) error {
		*v.(*handoversRequest) = req
		return nil
	})
	require.NoError(t, err)
	list := out.(handoversReply).List
	require.Len(t, list, 1)
	alone := transport.RemoteErrorOf(fail)
	require.Equal(t, transport.CodeDeadlineExceeded, alone.Code)
	require.Equal(t, alone.Code, list[0].Code)
	require.Equal(t, alone.Message, list[0].Message)
}
