package pool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/migratory/mtcp/transport"
)

// maxHandoverBatch bounds the sessions of one KindHandovers call.
const maxHandoverBatch = 64

// handleHandovers answers several handover requests of one member, each as
// handleHandover would.
func (n *Runtime) handleHandovers(ctx context.Context, from string, decode func(any) error) (any, error) {
	var req handoversRequest
	if err := decode(&req); err != nil {
		return nil, err
	}
	if len(req.List) > maxHandoverBatch {
		return nil, fmt.Errorf("%d handovers in one call, at most %d", len(req.List), maxHandoverBatch)
	}
	// Each session is handed over on its own, at once: one whose lock is
	// held a while does not hold up the others.
	out := handoversReply{List: make([]handoverAnswer, len(req.List))}
	var wg sync.WaitGroup
	for i, r := range req.List {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := n.handOver(ctx, from, r)
			if err != nil { // refused as a lone call's handler would be
				re := transport.RemoteErrorOf(err)
				out.List[i].Code, out.List[i].Message = re.Code, re.Message
				return
			}
			out.List[i].Reply = rep
		}()
	}
	wg.Wait()
	return out, nil
}

// handoverBatches gathers the handover requests this member makes of each
// other member, by the member's control address: while maxBatchesInFlight
// calls to a member are under way, the requests that come meanwhile wait
// and go together in the next call (KindHandovers; a request that comes
// alone goes as KindHandover).
type handoverBatches = batcher[string, *pendingHandover]

type pendingHandover struct {
	ctx  context.Context
	req  HandoverRequest
	done chan handoverResult // capacity 1
}

func (p *pendingHandover) gaveUp() bool { return p.ctx.Err() != nil }
func (p *pendingHandover) size() int    { return 0 } // bounded by their number

type handoverResult struct {
	rep handoverReply
	err error
}

// callHandover asks origin for a session, as one call of KindHandover
// would, in a batch with the other requests this member has for it. Its
// errors are those of transport.Client.Call.
func (n *Runtime) callHandover(ctx context.Context, origin Member, req HandoverRequest) (handoverReply, error) {
	p := &pendingHandover{ctx: ctx, req: req, done: make(chan handoverResult, 1)}
	q, start := n.batches.add(origin.ControlAddr, p)
	if start {
		// This caller is the sender: it sends the first batch itself (its
		// own request is in it unless a full batch waited before it), with
		// no goroutine to start and hand the answer back across, for a live
		// move waits on this call; requests still waiting after it go on in
		// the background.
		if batch := n.batches.next(q, maxHandoverBatch, math.MaxInt); batch != nil {
			n.sendHandoverBatch(origin, batch)
			if !n.background(func() { n.sendHandovers(origin, q) }) {
				n.sendHandovers(origin, q) // the member closes: what waits goes now
			}
		}
	}
	select {
	case r := <-p.done:
		return r.rep, r.err
	case <-ctx.Done():
		return handoverReply{}, fmt.Errorf("transport: call %q to %s: %w", KindHandovers, origin.ControlAddr, ctx.Err())
	}
}

// sendHandovers sends the requests waiting for origin, a batch at a time,
// until none waits.
func (n *Runtime) sendHandovers(origin Member, q *batchQueue[*pendingHandover]) {
	for batch := n.batches.next(q, maxHandoverBatch, math.MaxInt); batch != nil; batch = n.batches.next(q, maxHandoverBatch, math.MaxInt) {
		n.sendHandoverBatch(origin, batch)
	}
}

// sendHandoverBatch makes one call for batch and gives each request its
// answer. The call lasts as long as the most patient request may wait: a
// request whose caller gave up before its session was handed over is
// answered again when asked again (the tombstone keeps the answer).
func (n *Runtime) sendHandoverBatch(origin Member, batch []*pendingHandover) {
	if len(batch) == 1 { // alone: as it was asked
		n.sendHandoverAlone(origin, batch[0])
		return
	}
	var deadline time.Time
	req := handoversRequest{List: make([]HandoverRequest, len(batch))}
	for i, p := range batch {
		req.List[i] = p.req
		if d, ok := p.ctx.Deadline(); ok && d.After(deadline) {
			deadline = d
		}
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(n.cfg.HandshakeTimeout)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var rep handoversReply
	err := n.rpc.Call(ctx, origin.ControlAddr, KindHandovers, req, &rep)
	if errors.Is(err, transport.ErrUnknownKind) {
		eachAlone(batch, func(p *pendingHandover) { n.sendHandoverAlone(origin, p) })
		return
	}
	answerEach(KindHandovers, origin.ControlAddr, batch, rep.List, err, func(p *pendingHandover, a handoverAnswer, err error) {
		p.done <- handoverResult{rep: a.Reply, err: err}
	})
}

// sendHandoverAlone makes the call of one handover request of its own.
func (n *Runtime) sendHandoverAlone(origin Member, p *pendingHandover) {
	var r handoverResult
	r.err = n.rpc.Call(p.ctx, origin.ControlAddr, KindHandover, p.req, &r.rep)
	p.done <- r
}
