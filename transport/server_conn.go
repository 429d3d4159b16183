package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// readBufSize is the size of each connection's read buffer.
const readBufSize = 4 << 10

// serverConn is one authenticated inbound connection. One goroutine reads
// requests; each request runs in its own goroutine, and a request that
// arrives before the previous one is answered is a protocol error.
type serverConn struct {
	s    *Server
	nc   net.Conn
	sec  *secureConn
	peer string

	mu   sync.Mutex // guards busy and the read deadline
	busy bool
}

// serve runs the handshake on p's connection, then serves its requests
// until it fails, idles out or the server closes.
func (s *Server) serve(p *pending) {
	defer s.wg.Done()
	nc := p.nc
	remote := nc.RemoteAddr().String()
	br := bufio.NewReaderSize(nc, readBufSize)
	hs, err := s.handshake(p, br)
	if err != nil {
		s.logDrop("handshake failed", remote, "", err)
		_ = nc.Close()
		s.untrack(nc)
		<-s.hsTokens // last: goroutines in a handshake stay within 2×MaxHandshakes
		return
	}
	<-s.hsTokens
	defer s.untrack(nc)
	defer nc.Close()
	defer s.leave()
	_ = nc.SetDeadline(time.Time{})
	c := &serverConn{s: s, nc: nc, sec: hs.sec, peer: hs.peerName}
	err = c.loop()
	s.logDrop("connection dropped", remote, hs.peerName, err)
}

// logDrop logs why a connection ended: a peer breaking the protocol or
// failing authentication at warning level (rate-limited), ordinary ends
// at debug level.
func (s *Server) logDrop(msg, remote, peer string, err error) {
	if err == nil || s.ctx.Err() != nil {
		return
	}
	args := []any{"remote", remote, "peer", peer, "err", err}
	if errors.Is(err, ErrAuth) || errors.Is(err, ErrProtocol) || errors.Is(err, ErrVersion) {
		s.badPeerLog.warn(s.log, "transport: "+msg, args...)
		return
	}
	s.log.Debug("transport: "+msg, args...)
}

// loop reads requests and starts their handlers. It returns nil when the
// peer closes the connection between requests or leaves it idle.
func (c *serverConn) loop() error {
	ctx, cancel := context.WithCancel(c.s.ctx)
	var handlers sync.WaitGroup
	defer func() {
		cancel()
		_ = c.nc.Close()
		handlers.Wait()
	}()
	c.mu.Lock()
	_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
	c.mu.Unlock()
	for {
		msg, err := c.sec.readFrame()
		if err != nil {
			c.mu.Lock()
			busy := c.busy
			c.mu.Unlock()
			if !busy && (errors.Is(err, io.EOF) || isTimeout(err)) {
				return nil // closed or idle between requests
			}
			return err
		}
		req, err := parseRequest(msg)
		if err != nil {
			return err
		}
		c.mu.Lock()
		if c.busy {
			c.mu.Unlock()
			return protocolError("request %q sent before the previous one was answered", req.Kind)
		}
		c.busy = true
		// While the handler runs, a read ends only when the peer gives up
		// (closes) or breaks the protocol; it is bounded by the caller's
		// deadline plus IdleTimeout.
		var (
			hctx         context.Context
			hcancel      context.CancelFunc
			readDeadline time.Time
		)
		if req.TimeoutMS > 0 {
			d := time.Duration(req.TimeoutMS) * time.Millisecond
			hctx, hcancel = context.WithTimeout(ctx, d)
			readDeadline = time.Now().Add(d + c.s.cfg.IdleTimeout)
		} else {
			hctx, hcancel = context.WithCancel(ctx)
		}
		_ = c.nc.SetReadDeadline(readDeadline)
		c.mu.Unlock()
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			defer hcancel()
			c.answer(hctx, req)
		}()
	}
}

// answer runs the handler of req and writes the response.
func (c *serverConn) answer(ctx context.Context, req request) {
	out := c.s.invoke(ctx, c.peer, req, c.sec.maxSend)
	c.mu.Lock()
	c.busy = false
	_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
	c.mu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.CallTimeout))
	if _, err := c.sec.writeFrame(out); err != nil {
		if c.s.ctx.Err() == nil {
			c.s.log.Debug("transport: writing response failed", "peer", c.peer, "kind", req.Kind, "err", err)
		}
		_ = c.nc.Close()
	}
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
