package main

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migratory/mtcp"
)

// echoApp is a checkpointing echo: it writes back what it reads and
// checkpoints after each write. Its state is the count of input bytes it
// consumed and a running SHA-256 of them, so that any member can take a
// session over from its checkpoint; at the end of a session's input it
// records the digest of all of it.
type echoApp struct {
	mu     sync.Mutex
	final  map[string][]byte // session id -> digest of all input
	errs   map[string]int    // what went wrong, how often
	errN   int
	served atomic.Int64 // runs started (one per member a session ran on)
}

func newEchoApp() *echoApp { return &echoApp{final: map[string][]byte{}, errs: map[string]int{}} }

func (a *echoApp) fail(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errN++
	if len(a.errs) < 1000 { // distinct messages kept (the count covers all)
		a.errs[fmt.Sprintf(format, args...)]++
	}
}

// errors returns how many errors there were and the commonest, grouped.
func (a *echoApp) errors() (int, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.errN, strings.Join(topErrors(a.errs, 3), "; ")
}

func (a *echoApp) digest(id string) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.final[id]
}

func (a *echoApp) serve(member string, c *mtcp.Conn) {
	defer c.Close()
	a.served.Add(1)
	id := c.SessionID()
	h := sha256.New()
	var consumed uint64
	if st := c.State(); st != nil {
		if len(st) < 8 {
			a.fail("%s: session %s: state of %d bytes", member, id, len(st))
			return
		}
		consumed = binary.BigEndian.Uint64(st)
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st[8:]); err != nil {
			a.fail("%s: session %s: bad state: %v", member, id, err)
			return
		}
	}
	state := func() []byte {
		b, _ := h.(encoding.BinaryMarshaler).MarshalBinary()
		return append(binary.BigEndian.AppendUint64(nil, consumed), b...)
	}
	if err := c.Checkpoint(state()); err != nil {
		a.ended(member, id, fmt.Errorf("checkpoint: %w", err))
		return
	}
	// A small buffer while the session echoes small rounds (thousands of
	// them, each restored on every move, are held by the drain scenario),
	// a large one once a read fills it (a stream).
	buf := make([]byte, 4<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			consumed += uint64(n)
			if _, werr := c.Write(buf[:n]); werr != nil {
				a.ended(member, id, fmt.Errorf("write: %w", werr))
				return
			}
			if cerr := c.Checkpoint(state()); cerr != nil {
				a.ended(member, id, fmt.Errorf("checkpoint: %w", cerr))
				return
			}
			if n == len(buf) && n < 64<<10 {
				buf = make([]byte, 64<<10)
			}
		}
		if err == io.EOF {
			a.mu.Lock()
			a.final[id] = h.Sum(nil)
			a.mu.Unlock()
			return
		}
		if err != nil {
			a.ended(member, id, fmt.Errorf("read: %w", err))
			return
		}
	}
}

// ended notes a run that ended other than by moving away.
func (a *echoApp) ended(member, id string, err error) {
	if errors.Is(err, mtcp.ErrMigrated) {
		return
	}
	a.fail("%s: session %s: %v", member, id, err)
}

// streamApp writes a paced stream of pattern bytes named by the seed its
// client sends first, checkpointing (seed, offset) after each write. A
// member marked slow writes at a fraction of the pace.
type streamApp struct {
	chunk int
	every time.Duration // between writes at full pace
	slow  sync.Map      // member -> int64 factor (absent: 1)
	quit  chan struct{}
	echo  *echoApp // for its error record
}

// ended notes a run that ended other than by moving away or at the end of
// the scenario.
func (a *streamApp) ended(member, id string, err error) {
	select {
	case <-a.quit:
		return
	default:
	}
	a.echo.ended(member, id, err)
}

func (a *streamApp) factor(member string) time.Duration {
	if f, ok := a.slow.Load(member); ok {
		return time.Duration(f.(int64))
	}
	return 1
}

func (a *streamApp) serve(member string, c *mtcp.Conn) {
	defer c.Close()
	id := c.SessionID()
	var seed, off uint64
	if st := c.State(); st != nil {
		if len(st) != 16 {
			a.echo.fail("%s: session %s: state of %d bytes", member, id, len(st))
			return
		}
		seed, off = binary.BigEndian.Uint64(st), binary.BigEndian.Uint64(st[8:])
	} else {
		var b [8]byte
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(c, b[:]); err != nil {
			a.ended(member, id, fmt.Errorf("reading the seed: %w", err))
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		seed = binary.BigEndian.Uint64(b[:])
	}
	state := func() []byte { return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, seed), off) }
	if err := c.Checkpoint(state()); err != nil {
		a.ended(member, id, fmt.Errorf("checkpoint: %w", err))
		return
	}
	buf := make([]byte, a.chunk)
	next := time.Now()
	for {
		next = next.Add(a.every * a.factor(member))
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-a.quit:
				return
			}
		} else {
			next = time.Now()
		}
		fillPattern(buf, seed, off)
		if _, err := c.Write(buf); err != nil {
			a.ended(member, id, fmt.Errorf("write: %w", err))
			return
		}
		off += uint64(len(buf))
		if err := c.Checkpoint(state()); err != nil {
			a.ended(member, id, fmt.Errorf("checkpoint: %w", err))
			return
		}
	}
}
