package pool

import (
	"fmt"
	"sync"

	"github.com/migratory/mtcp/transport"
)

// answer is one request's answer within a batch call's reply.
type answer interface {
	refusal() error // the member's refusal of the request, or nil
}

func (a handoverAnswer) refusal() error { return refusalOf(a.Code, a.Message) }
func (a batchAnswer) refusal() error    { return refusalOf(a.Code, a.Message) }

func refusalOf(code, message string) error {
	if code == "" {
		return nil
	}
	return &transport.RemoteError{Code: code, Message: message}
}

// answerEach gives each request of a batch sent as kind to addr its answer
// from list: the call's error err to all when it failed (or answered a
// different number of requests), else each its own answer, or the
// member's refusal of it with a zero answer.
func answerEach[P any, A answer](kind, addr string, batch []P, list []A, err error, give func(p P, a A, err error)) {
	if err == nil && len(list) != len(batch) {
		err = fmt.Errorf("transport: %q to %s: %d answers to %d requests", kind, addr, len(list), len(batch))
	}
	for i, p := range batch {
		var a A
		e := err
		if e == nil {
			if e = list[i].refusal(); e == nil {
				a = list[i]
			}
		}
		give(p, a, e)
	}
}

// eachAlone makes every request of batch as a call of its own, all at
// once, for a member that does not know the batch's kind.
func eachAlone[P any](batch []P, call func(P)) {
	var wg sync.WaitGroup
	for _, p := range batch {
		wg.Go(func() { call(p) })
	}
	wg.Wait()
}
