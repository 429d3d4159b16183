// Package transfer drives the byte streams of tests and scenarios: a
// deterministic pattern to send, an echo transfer that sends it while it
// reads back whatever the peer returns, and the SHA-256 digests that say
// whether every byte came through exactly once and in order.
package transfer

import (
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Pattern yields n deterministic pseudo-random bytes (xorshift64), the same
// for the same seed.
type Pattern struct {
	n, off int64
	x      uint64
}

// NewPattern returns the n bytes of the pattern seed.
func NewPattern(n int64, seed uint64) *Pattern { return &Pattern{n: n, x: seed | 1} }

// Read fills p with the next bytes of the pattern.
func (r *Pattern) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n-r.off {
		p = p[:r.n-r.off]
	}
	for i := range p {
		r.x ^= r.x << 13
		r.x ^= r.x >> 7
		r.x ^= r.x << 17
		p[i] = byte(r.x)
	}
	r.off += int64(len(p))
	return len(p), nil
}

// Offset is how many bytes of the pattern were read so far.
func (r *Pattern) Offset() int64 { return r.off }

// Digest is the SHA-256 of the n bytes of the pattern seed.
func Digest(n int64, seed uint64) []byte {
	h := sha256.New()
	_, _ = io.Copy(h, NewPattern(n, seed))
	return h.Sum(nil)
}

// Result is what an echo transfer sent and read back.
type Result struct {
	Sent, Received    []byte // SHA-256 of each direction
	SentN, ReceivedN  int64  // bytes of each direction
	WriteErr, ReadErr error  // nil if the direction ended cleanly (reading: at EOF)
}

// Conn is a connection whose write side closes on its own.
type Conn interface {
	net.Conn
	CloseWrite() error
}

// Echo writes all of src to c and then closes c's write side, while it
// reads all that c returns until EOF; onProgress (if not nil) is called
// with the bytes read back so far after every read that returned some.
func Echo(c Conn, src io.Reader, onProgress func(int64)) Result {
	var res Result
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h := sha256.New()
		res.SentN, res.WriteErr = io.CopyBuffer(c, io.TeeReader(src, h), make([]byte, 64<<10))
		res.Sent = h.Sum(nil)
		if res.WriteErr == nil {
			res.WriteErr = c.CloseWrite()
		}
	}()
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for {
		k, err := c.Read(buf)
		h.Write(buf[:k])
		res.ReceivedN += int64(k)
		if onProgress != nil && k > 0 {
			onProgress(res.ReceivedN)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				res.ReadErr = err
			}
			break
		}
	}
	res.Received = h.Sum(nil)
	wg.Wait()
	return res
}

// Paced yields the bytes of p at about rate bytes per second, at most
// 32 KiB a read.
type Paced struct {
	p     *Pattern
	rate  float64
	start time.Time
}

// NewPaced returns p paced at rate bytes per second.
func NewPaced(p *Pattern, rate float64) *Paced { return &Paced{p: p, rate: rate} }

// Read waits until the pace allows the bytes read so far, then reads.
func (r *Paced) Read(b []byte) (int, error) {
	if r.start.IsZero() {
		r.start = time.Now()
	}
	if len(b) > 32<<10 {
		b = b[:32<<10]
	}
	if ahead := time.Duration(float64(r.p.Offset())/r.rate*float64(time.Second)) - time.Since(r.start); ahead > 0 {
		time.Sleep(ahead)
	}
	return r.p.Read(b)
}
