package mtcphttp

import (
	"net"
	"net/http"
	"sync"

	"github.com/migratory/mtcp"
)

// conn is an mtcp session as the http.Server sees it: it follows the
// requests the server reads, so that the server's ConnState hook knows
// when the connection sits between requests with nothing read ahead.
type conn struct {
	*mtcp.Conn
	mu      sync.Mutex
	f       framing
	reading int  // Reads in progress
	done    bool // hijacked or closed: no more checkpoints
}

// Read reads from the session and follows the requests in what it read.
func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.reading++
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.reading--
	c.f.feed(p[:n])
	c.mu.Unlock()
	return n, err
}

// NetConn returns the mtcp session.
func (c *conn) NetConn() net.Conn { return c.Conn }

// stateChanged checkpoints the session, with nil state, when it sits at a
// request boundary: before its first request, unless the server may speak
// HTTP/2 on it (h2c), and whenever the server has served a request and read
// nothing of the next one. net/http reads ahead: its buffered reader takes
// what the client sent (a pipelining client's next requests), and while a
// handler runs it reads a byte in the background to notice a client that
// went away. A checkpoint then would claim input the server has not
// served: a member restoring it would never answer those requests. Such an
// idle point is skipped; the next clean one is checkpointed.
func (c *conn) stateChanged(s http.ConnState, http2 bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateNew:
		if !http2 && c.f.pos == 0 && c.reading == 0 {
			_ = c.Conn.Checkpoint(nil)
		}
	case http.StateIdle:
		if c.f.served() && !c.done && c.reading == 0 {
			// The mutex keeps Reads out until the checkpoint is taken.
			_ = c.Conn.Checkpoint(nil)
		}
	case http.StateHijacked, http.StateClosed:
		c.done = true
	}
}
