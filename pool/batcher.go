package pool

import "sync"

// batcher gathers the requests this member makes of other members, a queue
// per destination (K): up to maxBatchesInFlight calls to one destination
// are under way at once, and the requests that come while they are go
// together in the next. Both the handover requests (KindHandovers) and the
// other batchable kinds (KindBatch) are gathered so.
type batcher[K comparable, P queued] struct {
	mu     sync.Mutex
	queues map[K]*batchQueue[P]
}

// queued is a request in a batcher's queue.
type queued interface {
	gaveUp() bool // its caller stopped waiting: it is not sent
	size() int    // its encoded size, as batches are bounded in bytes
}

type batchQueue[P queued] struct {
	waiting  []P
	inFlight int // senders under way
}

// add queues p for k. It returns the queue, and whether the caller is to
// start a sender for it (then fewer than maxBatchesInFlight were under
// way; unstart gives the place back if no sender could start).
func (b *batcher[K, P]) add(k K, p P) (q *batchQueue[P], start bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.queues == nil {
		b.queues = make(map[K]*batchQueue[P])
	}
	q = b.queues[k]
	if q == nil {
		q = &batchQueue[P]{}
		b.queues[k] = q
	}
	q.waiting = append(q.waiting, p)
	if q.inFlight < maxBatchesInFlight {
		q.inFlight++
		return q, true
	}
	return q, false
}

// unstart gives back the place of a sender that did not start.
func (b *batcher[K, P]) unstart(q *batchQueue[P]) {
	b.mu.Lock()
	q.inFlight--
	b.mu.Unlock()
}

// next takes the next batch a sender of q sends: the oldest requests, at
// most most of them and bytes of them (but always the oldest, however
// large), leaving out those whose callers gave up. With none waiting, the
// sender ends: next returns nil.
func (b *batcher[K, P]) next(q *batchQueue[P], most, bytes int) []P {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []P
	size := 0
	for len(q.waiting) > 0 && len(batch) < most && (len(batch) == 0 || size+q.waiting[0].size() <= bytes) {
		p := q.waiting[0]
		var none P
		q.waiting[0] = none
		q.waiting = q.waiting[1:]
		if !p.gaveUp() {
			batch = append(batch, p)
			size += p.size()
		}
	}
	if len(batch) == 0 {
		q.inFlight--
		return nil
	}
	return batch
}
