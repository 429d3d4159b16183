package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/poolhook"
	"github.com/migratory/mtcp/transport"
)

// Calls gathered per member. A member's calls of the kinds that go in
// batches (batchable) are queued per member called: up to
// maxBatchesInFlight calls to it are under way at once, and the requests
// that come while they are go together in the next (KindBatch), each with
// its own deadline. Alone, a request goes as a call of its own kind. A
// member makes thousands of these calls a second while it drains or
// replicates busy sessions: one round trip then carries many of them
// instead of each waiting for a connection of its own.

const (
	// maxBatch bounds the requests of one KindBatch call.
	maxBatch = 256
	// maxBatchBytes bounds the encoded requests of one KindBatch call; a
	// request of more than half of it goes alone.
	maxBatchBytes = 4 << 20
	// maxBatchesInFlight bounds the calls of one queue under way to one
	// member.
	maxBatchesInFlight = 4
)

// bulk reports whether requests of kind are copies, which a member sends
// by the thousand while its sessions checkpoint: they queue apart from the
// requests a client's resume or a takeover waits for, which do not wait
// behind them.
func bulk(kind string) bool { return kind == KindReplicate || kind == KindForget }

// batchable reports whether requests of kind may go in a KindBatch call.
func batchable(kind string) bool {
	switch kind {
	case KindSettle, KindReplicate, KindFetch, KindClaim, KindForget, KindEpoch:
		return true
	}
	return false
}

// callBatches are the queues of requests to other members.
type callBatches = batcher[queueKey, *pendingCall]

// queueKey names a queue: the member's control address, and whether it
// holds bulk requests.
type queueKey struct {
	addr string
	bulk bool
}

type pendingCall struct {
	ctx  context.Context
	kind string
	body []byte // the request, msgpack-encoded
	done chan callResult
}

func (p *pendingCall) gaveUp() bool { return p.ctx.Err() != nil }
func (p *pendingCall) size() int    { return len(p.body) }

type callResult struct {
	body []byte
	err  error
}

// call makes a control-plane call to the member whose control address is
// addr, as transport.Client.Call would, in a batch with the other requests
// this member has for it if kind is batchable. Its errors are those of
// transport.Client.Call.
func (n *Runtime) call(ctx context.Context, addr, kind string, req, resp any) error {
	if !batchable(kind) {
		return n.rpc.Call(ctx, addr, kind, req, resp)
	}
	err := ctx.Err()
	if err != nil {
		return fmt.Errorf("transport: call %q to %s: %w", kind, addr, err)
	}
	var body []byte
	if raw, ok := req.(msgpack.RawMessage); ok {
		body = raw // encoded already (a checkpoint copy, once for all its targets)
	} else if body, err = msgpack.Marshal(req); err != nil {
		return fmt.Errorf("transport: encoding %q request: %w", kind, err)
	}
	if len(body) > maxBatchBytes/2 {
		return n.rpc.Call(ctx, addr, kind, msgpack.RawMessage(body), resp)
	}
	p := &pendingCall{ctx: ctx, kind: kind, body: body, done: make(chan callResult, 1)}
	q, start := n.calls.add(queueKey{addr, bulk(kind)}, p)
	if start && !n.background(func() { n.sendCalls(addr, q) }) {
		// The member closes: this request goes alone.
		n.calls.unstart(q)
		return n.rpc.Call(ctx, addr, kind, msgpack.RawMessage(body), resp)
	}
	select {
	case r := <-p.done:
		if r.err != nil {
			return r.err
		}
		return transport.DecodeResponse(kind, addr, r.body, resp)
	case <-ctx.Done():
		return fmt.Errorf("transport: call %q to %s: %w", kind, addr, ctx.Err())
	}
}

// sendCalls sends the requests waiting for addr, a batch at a time,
// until none waits.
func (n *Runtime) sendCalls(addr string, q *batchQueue[*pendingCall]) {
	for batch := n.calls.next(q, maxBatch, maxBatchBytes); batch != nil; batch = n.calls.next(q, maxBatch, maxBatchBytes) {
		n.sendCallBatch(addr, batch)
	}
}

// sendCallBatch makes one call for batch and gives each request its
// answer. The call lasts as long as the most patient request may wait;
// each request is given its own time on the member called.
func (n *Runtime) sendCallBatch(addr string, batch []*pendingCall) {
	if len(batch) == 1 { // alone: as it was asked
		n.sendCallAlone(addr, batch[0])
		return
	}
	now := time.Now()
	var deadline time.Time
	req := batchRequest{List: make([]batchItem, len(batch))}
	for i, p := range batch {
		req.List[i] = batchItem{Kind: p.kind, Body: p.body}
		if d, ok := p.ctx.Deadline(); ok {
			req.List[i].TimeoutMS = uint32(max(d.Sub(now).Milliseconds(), 1))
			if d.After(deadline) {
				deadline = d
			}
		}
	}
	if deadline.IsZero() {
		deadline = now.Add(n.cfg.HandshakeTimeout)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var rep batchReply
	body := msgpack.RawMessage(req.appendMsgpack(make([]byte, 0, req.encodedSize())))
	err := n.rpc.Call(ctx, addr, KindBatch, body, &rep)
	if errors.Is(err, transport.ErrUnknownKind) {
		eachAlone(batch, func(p *pendingCall) { n.sendCallAlone(addr, p) })
		return
	}
	answerEach(KindBatch, addr, batch, rep.List, err, func(p *pendingCall, a batchAnswer, err error) {
		p.done <- callResult{body: a.Body, err: err}
	})
}

// sendCallAlone makes the call of one request of its own kind.
func (n *Runtime) sendCallAlone(addr string, p *pendingCall) {
	var body msgpack.RawMessage
	err := n.rpc.Call(p.ctx, addr, p.kind, msgpack.RawMessage(p.body), &body)
	p.done <- callResult{body: body, err: err}
}

// handleBatch answers the requests of a KindBatch call, each as the
// handler of its kind would, each within its own time. The handlers of
// the batchable kinds answer from memory at once: they run one after the
// other, without a goroutine and a context each, unless a test stands
// between the member and a kind's handler (then they run at once, each on
// its own, so that one made slow does not hold up the others).
func (n *Runtime) handleBatch(ctx context.Context, from string, decode func(any) error) (any, error) {
	var req batchRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	if len(req.List) > maxBatch {
		return nil, fmt.Errorf("%d requests in one call, at most %d", len(req.List), maxBatch)
	}
	out := batchReply{List: make([]batchAnswer, len(req.List))}
	var wg sync.WaitGroup
	for i, it := range req.List {
		h := n.handlers[it.Kind]
		if h == nil || !batchable(it.Kind) {
			out.List[i].Code, out.List[i].Message = transport.CodeUnknownKind, fmt.Sprintf("no handler for kind %q in a batch", it.Kind)
			continue
		}
		if !poolhook.Hooked(n, it.Kind) {
			// Answered from memory: its own time cannot run out meanwhile.
			out.List[i] = n.runBatched(ctx, h, from, it)
			continue
		}
		wg.Go(func() {
			ictx, cancel := ctx, context.CancelFunc(func() {})
			if it.TimeoutMS > 0 {
				ictx, cancel = context.WithTimeout(ctx, time.Duration(it.TimeoutMS)*time.Millisecond)
			}
			defer cancel()
			out.List[i] = n.runBatched(ictx, h, from, it)
		})
	}
	wg.Wait()
	return msgpack.RawMessage(out.appendMsgpack(make([]byte, 0, out.encodedSize()))), nil
}

// runBatched runs the handler of one request of a batch and gives its
// answer, or its error's code and message, as the transport would send
// them for a call of the request's kind alone.
func (n *Runtime) runBatched(ctx context.Context, h transport.Handler, from string, it batchItem) batchAnswer {
	body, rerr := transport.RunHandler(ctx, n.log, h, from, it.Kind, it.Body)
	if rerr != nil {
		return batchAnswer{Code: rerr.Code, Message: rerr.Message}
	}
	return batchAnswer{Body: body}
}
