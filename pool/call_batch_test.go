package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/poolhook"
	"github.com/migratory/mtcp/transport"
)

// holdCalls holds member's requests of kind (and counts them), alone or in a
// batch, until release is closed.
func holdCalls(member *Runtime, kind string, count *atomic.Int64, release chan struct{}) (undo func()) {
	return poolhook.Set(member, kind, func(h transport.Handler) transport.Handler {
		return func(ctx context.Context, from string, decode func(any) error) (any, error) {
			count.Add(1)
			<-release
			return h(ctx, from, decode)
		}
	})
}

// releaser closes release once, at the latest when the test ends: held
// handlers never outlive it.
func releaser(t *testing.T) (release chan struct{}, free func()) {
	release = make(chan struct{})
	var once sync.Once
	free = func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	return release, free
}

// countCalls counts member's requests of kind.
func countCalls(member *Runtime, kind string, count *atomic.Int64) (undo func()) {
	return poolhook.Set(member, kind, func(h transport.Handler) transport.Handler {
		return func(ctx context.Context, from string, decode func(any) error) (any, error) {
			count.Add(1)
			return h(ctx, from, decode)
		}
	})
}

// waitingCalls is how many requests other than copies n has waiting for
// the member at addr.
func waitingCalls(n *Runtime, addr string) int {
	b := &n.calls
	b.mu.Lock()
	defer b.mu.Unlock()
	if q := b.queues[queueKey{addr: addr}]; q != nil {
		return len(q.waiting)
	}
	return 0
}

// claimedOnA starts members a and b; a holds sessions {tag, i} for i below
// n, each at epoch base+i.
func claimedOnA(t *testing.T, tag byte, n int, base uint64) ([]*Runtime, Member) {
	t.Helper()
	members, _ := startFakeMembers(t, RuntimeConfig{HandshakeTimeout: 5 * time.Second}, "a", "b")
	a, _ := members[1].Membership().Member("a")
	for i := range n {
		require.NoError(t, members[0].store.Claim(sessionID{tag, byte(i)}, base+uint64(i), "x"))
	}
	return members, a
}

// epochQueries are concurrent epoch queries for sessions {tag, 0} to
// {tag, n-1}, and their answers.
type epochQueries struct {
	wg     sync.WaitGroup
	errs   []error
	epochs []uint64
}

// startEpochQueries starts n epoch queries from the member from to the
// member at addr: the first maxBatchesInFlight one at a time, each once the one
// before reached the member (counted in reached), then the others.
func startEpochQueries(t *testing.T, from *Runtime, addr string, tag byte, n int, reached *atomic.Int64) *epochQueries {
	t.Helper()
	q := &epochQueries{errs: make([]error, n), epochs: make([]uint64, n)}
	query := func(i int) {
		q.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var rep epochReply
			q.errs[i] = from.call(ctx, addr, KindEpoch, epochQuery{Session: sessionID{tag, byte(i)}}, &rep)
			q.epochs[i] = rep.Epoch
		})
	}
	for i := range maxBatchesInFlight {
		query(i)
		eventually(t, func() bool { return reached.Load() == int64(i+1) }, "query %d reaches the member", i)
	}
	for i := maxBatchesInFlight; i < n; i++ {
		query(i)
	}
	return q
}

// check waits for the answers: session {tag, i} has epoch base+i.
func (q *epochQueries) check(t *testing.T, base uint64) {
	t.Helper()
	q.wg.Wait()
	for i := range q.errs {
		require.NoError(t, q.errs[i], "session %d", i)
		require.Equal(t, base+uint64(i), q.epochs[i], "session %d", i)
	}
}

// TestEpochQueriesGoTogether: while maxBatchesInFlight calls to a member
// are under way, the epoch queries for it that come meanwhile wait and go
// together in one call; each gets the epoch of its own session, and a
// claim in the same call that the member refuses fails alone, with its
// code.
func TestEpochQueriesGoTogether(t *testing.T) {
	const sessions = 100
	members, a := claimedOnA(t, 7, sessions, 10)
	var singles, batches atomic.Int64
	release, free := releaser(t)
	defer holdCalls(members[0], KindEpoch, &singles, release)()
	defer countCalls(members[0], KindBatch, &batches)()

	// The first ones go alone, each in a call of its own, and are held.
	q := startEpochQueries(t, members[1], a.ControlAddr, 7, sessions, &singles)
	// A stale claim waits with them.
	claimed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		claimed <- members[1].call(ctx, a.ControlAddr, KindClaim, claimRequest{Session: sessionID{7, 0}, Epoch: 3}, nil)
	}()
	eventually(t, func() bool { return waitingCalls(members[1], a.ControlAddr) == sessions-maxBatchesInFlight+1 },
		"the other requests wait")
	free()
	q.check(t, 10)
	claimErr := <-claimed
	require.EqualValues(t, sessions, singles.Load(), "each query was answered once (a batch's requests run through their kind's handler)")
	require.EqualValues(t, 1, batches.Load(), "the requests that waited went in one call")
	var re *transport.RemoteError
	require.ErrorAs(t, claimErr, &re)
	require.Equal(t, CodeStale, re.Code)
}

// TestBatchToMemberThatDoesNotBatch: a member that answers a batch with
// unknown_kind (an older version) is asked one request at a time, and
// every request is answered.
func TestBatchToMemberThatDoesNotBatch(t *testing.T) {
	const sessions = 40
	members, a := claimedOnA(t, 8, sessions, 20)
	var batches atomic.Int64
	defer poolhook.Set(members[0], KindBatch, func(transport.Handler) transport.Handler {
		return func(context.Context, string, func(any) error) (any, error) {
			batches.Add(1)
			return nil, &transport.RemoteError{Code: transport.CodeUnknownKind, Message: "no handler for kind \"batch\""}
		}
	})()
	var singles atomic.Int64
	release, free := releaser(t)
	defer holdCalls(members[0], KindEpoch, &singles, release)()
	q := startEpochQueries(t, members[1], a.ControlAddr, 8, sessions, &singles)
	eventually(t, func() bool { return waitingCalls(members[1], a.ControlAddr) == sessions-maxBatchesInFlight },
		"the other requests wait")
	free()
	q.check(t, 20)
	require.EqualValues(t, 1, batches.Load())
	require.EqualValues(t, sessions, singles.Load(), "each request was asked alone")
}

// TestBatchedRequestGivenUp: a request whose caller gave up while it
// waited is not sent; one whose batch call fails gets the error, and
// asked again, its answer.
func TestBatchedRequestGivenUp(t *testing.T) {
	members, _ := startFakeMembers(t, RuntimeConfig{HandshakeTimeout: 5 * time.Second}, "a", "b")
	a, _ := members[1].Membership().Member("a")
	require.NoError(t, members[0].store.Claim(sessionID{9, 1}, 42, "x"))
	var singles atomic.Int64
	release, free := releaser(t)
	defer holdCalls(members[0], KindEpoch, &singles, release)()
	var fail atomic.Bool
	fail.Store(true)
	var batches atomic.Int64
	defer poolhook.Set(members[0], KindBatch, func(h transport.Handler) transport.Handler {
		return func(ctx context.Context, from string, decode func(any) error) (any, error) {
			batches.Add(1)
			if fail.Load() {
				return nil, errors.New("lost on the way")
			}
			return h(ctx, from, decode)
		}
	})()
	ask := func(ctx context.Context) (uint64, error) {
		var rep epochReply
		err := members[1].call(ctx, a.ControlAddr, KindEpoch, epochQuery{Session: sessionID{9, 1}}, &rep)
		return rep.Epoch, err
	}
	var wg sync.WaitGroup
	for i := range maxBatchesInFlight { // held, alone
		wg.Go(func() { _, _ = ask(context.Background()) })
		eventually(t, func() bool { return singles.Load() == int64(i+1) }, "call %d reaches a", i)
	}
	// One gives up while it waits; two others wait with it.
	gaveUp, cancel := context.WithCancel(context.Background())
	var gaveUpErr error
	wg.Go(func() { _, gaveUpErr = ask(gaveUp) })
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, errs[i] = ask(context.Background()) })
	}
	eventually(t, func() bool { return waitingCalls(members[1], a.ControlAddr) == 3 }, "three requests wait")
	cancel()
	free()
	wg.Wait()
	require.ErrorIs(t, gaveUpErr, context.Canceled)
	require.EqualValues(t, 1, batches.Load(), "the two left went together")
	for _, err := range errs {
		var re *transport.RemoteError
		require.ErrorAs(t, err, &re, "the batch's failure is each request's")
	}
	// Asked again, answered.
	fail.Store(false)
	epoch, err := ask(context.Background())
	require.NoError(t, err)
	require.Equal(t, uint64(42), epoch)
}

// TestBatchedAnswerIsALoneCallsAnswer: a request answered within a batch
// reaches its caller exactly as the same request made as a call of its
// own: the same body, or the same code and message for every kind of
// failure, a body whose header claims gigabytes among them (refused alone,
// not with its batch).
func TestBatchedAnswerIsALoneCallsAnswer(t *testing.T) {
	members, _ := startFakeMembers(t, RuntimeConfig{HandshakeTimeout: 5 * time.Second}, "a", "b")
	a, _ := members[1].Membership().Member("a")
	failures := map[string]error{
		"plain":    errors.New("plain failure"),
		"coded":    fmt.Errorf("wrapped: %w", &ControlError{Code: CodeStale, Message: "stale"}),
		"uncoded":  &ControlError{Message: "a code left empty"},
		"remote":   &transport.RemoteError{Code: "passed_on", Message: "from further away"},
		"deadline": fmt.Errorf("waited: %w", context.DeadlineExceeded),
	}
	defer poolhook.Set(members[0], KindEpoch, func(transport.Handler) transport.Handler {
		return func(ctx context.Context, from string, decode func(any) error) (any, error) {
			var what string
			if err := decode(&what); err != nil {
				return nil, err
			}
			if what == "panic" {
				panic("handler bug")
			}
			if what == "unencodable" {
				return make(chan int), nil
			}
			if err := failures[what]; err != nil {
				return nil, err
			}
			return epochReply{Epoch: uint64(len(what))}, nil
		}
	})()
	encode := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		return b
	}
	hugeClaim := []byte("\x81\xa1k\xdb\xdd\x00\x00\x00abcdef")
	for _, body := range [][]byte{
		encode("answered"), encode("plain"), encode("coded"), encode("uncoded"), encode("remote"),
		encode("deadline"), encode("panic"), encode("unencodable"), encode(42), hugeClaim,
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var lone msgpack.RawMessage
		loneErr := members[1].rpc.Call(ctx, a.ControlAddr, KindEpoch, msgpack.RawMessage(body), &lone)
		batch := []*pendingCall{
			{ctx: ctx, kind: KindEpoch, body: body, done: make(chan callResult, 1)},
			{ctx: ctx, kind: KindEpoch, body: encode("other"), done: make(chan callResult, 1)},
		}
		members[1].sendCallBatch(a.ControlAddr, batch)
		cancel()
		got, other := <-batch[0].done, <-batch[1].done
		require.NoError(t, other.err, "%q: the other request of the batch is answered", body)
		if loneErr == nil {
			require.NoError(t, got.err, "%q", body)
			require.Equal(t, []byte(lone), got.body, "%q", body)
			continue
		}
		var want, re *transport.RemoteError
		require.ErrorAs(t, loneErr, &want, "%q", body)
		require.ErrorAs(t, got.err, &re, "%q", body)
		require.Equal(t, want, re, "%q", body)
	}
}
