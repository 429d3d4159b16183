package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// SetDelay makes the connections opened from now on carry every byte d
// later than it came, each way (d = half the round trip a network adds):
// for measuring what a real path's latency does to a protocol on loopback.
// The bandwidth is not limited. A dial through the proxy still completes at
// once (the proxy accepts locally); only the bytes wait.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// delayed is a piece of the stream and when it may go on.
type delayed struct {
	b   []byte // nil: the source ended (eof) or failed
	due time.Time
	eof bool
}

// delayQueue bounds the pieces in flight on one direction of a delayed
// connection: a reader ahead by this many waits for the writer.
const delayQueue = 256

var delayBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// pumpDelayed copies src to dst as pump does, each piece held until d after
// it was read. It does not black-hole.
func (p *Proxy) pumpDelayed(dst, src net.Conn, d time.Duration) {
	q := make(chan delayed, delayQueue)
	go func() {
		defer close(q)
		for {
			bp := delayBufs.Get().(*[]byte)
			n, err := src.Read(*bp)
			if n > 0 {
				q <- delayed{b: (*bp)[:n], due: time.Now().Add(d)}
			} else {
				delayBufs.Put(bp)
			}
			if err != nil {
				q <- delayed{due: time.Now().Add(d), eof: errors.Is(err, io.EOF)}
				return
			}
		}
	}()
	for piece := range q {
		if wait := time.Until(piece.due); wait > 0 {
			time.Sleep(wait)
		}
		if piece.b == nil {
			if tc, ok := dst.(*net.TCPConn); ok && piece.eof {
				_ = tc.CloseWrite()
				for range q { // drain: the reader ends on its own
				}
				return
			}
			break
		}
		_, werr := dst.Write(piece.b)
		b := piece.b[:cap(piece.b)]
		delayBufs.Put(&b)
		if werr != nil {
			break
		}
	}
	abort(dst)
	abort(src)
	for range q { // the reader ends once src is closed
	}
}
