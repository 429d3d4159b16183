// Package testapp is the stateful application the tests, the chaos harness
// and the demo member run on mtcp: it echoes its input and keeps a running
// SHA-256 of it as its per-connection state, checkpointed after every read.
// Its output is determined by its state and its input, as the checkpoint
// contract asks, so any member can take its sessions over.
package testapp

import (
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sync"
)

// Session is what the echo needs of an mtcp server session.
type Session interface {
	net.Conn
	SessionID() string
	State() []byte
	Checkpoint(state []byte) error
	CloseWrite() error
}

// Events receives what happens to the echo's sessions. Any field may be nil.
type Events struct {
	Started func(id string, restored bool) // the session began (or resumed here from a checkpoint)
	Final   func(id string, digest []byte) // the client ended its input; digest covers all of it
	Failed  func(id string, err error)     // the session ended with an error
	Pause   func() <-chan struct{}         // if it returns a channel, the echo waits for it before each read
}

// Echo serves one session until it ends.
func Echo(c Session, ev Events) {
	defer c.Close()
	id := c.SessionID()
	h := sha256.New()
	restored := c.State() != nil
	if restored {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(c.State()); err != nil {
			report(ev.Failed, id, fmt.Errorf("restoring the state: %w", err))
			return
		}
	}
	if ev.Started != nil {
		ev.Started(id, restored)
	}
	if err := c.Checkpoint(marshal(h)); err != nil {
		report(ev.Failed, id, err)
		return
	}
	buf := make([]byte, 16<<10)
	for {
		if ev.Pause != nil {
			if ch := ev.Pause(); ch != nil {
				<-ch
			}
		}
		n, err := c.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, werr := c.Write(buf[:n]); werr != nil {
				report(ev.Failed, id, fmt.Errorf("write: %w", werr))
				return
			}
			if cerr := c.Checkpoint(marshal(h)); cerr != nil {
				report(ev.Failed, id, fmt.Errorf("checkpoint: %w", cerr))
				return
			}
		}
		if errors.Is(err, io.EOF) {
			if ev.Final != nil {
				ev.Final(id, h.Sum(nil))
			}
			_ = c.CloseWrite()
			_, _ = io.Copy(io.Discard, c)
			return
		}
		if err != nil {
			report(ev.Failed, id, fmt.Errorf("read: %w", err))
			return
		}
	}
}

func report(f func(string, error), id string, err error) {
	if f != nil {
		f(id, err)
	}
}

func marshal(h hash.Hash) []byte {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err) // crypto/sha256 always marshals
	}
	return b
}

// Serve accepts sessions from ln and echoes each in its own goroutine until
// Accept fails; it returns after every session ended.
func Serve(ln net.Listener, ev Events) {
	ServeWith(ln, func(s Session) { Echo(s, ev) })
}

// ServeWith accepts sessions from ln and runs app on each in its own
// goroutine until Accept fails; it returns after every session ended.
func ServeWith(ln net.Listener, app func(Session)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, ok := c.(Session)
		if !ok {
			_ = c.Close() // a plain client: not served by this application
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			app(s)
		}()
	}
}
