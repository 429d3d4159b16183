package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// Client calls other members. It keeps a few idle authenticated
// connections per address, has at most MaxConnsPerAddr calls under way to
// each, and is safe for concurrent use.
type Client struct {
	cfg     Config
	log     *slog.Logger
	authKey []byte

	mu     sync.Mutex
	closed bool
	idle   map[string][]*clientConn // per address, oldest first
	open   map[*clientConn]struct{} // every connection, idle or busy
	calls  map[string]chan struct{} // per address, a token per call under way
}

// NewClient returns a Client. It fails with ErrNoKey when cfg.Key is too short.
func NewClient(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{
		cfg:     cfg,
		log:     cfg.Logger,
		authKey: authKey(cfg.Key),
		idle:    make(map[string][]*clientConn),
		open:    make(map[*clientConn]struct{}),
		calls:   make(map[string]chan struct{}),
	}, nil
}

// Call sends a request of kind, msgpack-encoded from req, to the member
// listening at addr and waits for the answer, which it decodes into resp
// (resp may be nil to discard it). Without a deadline on ctx the call is
// bounded by CallTimeout; the server's handler gets the same deadline.
//
// Errors: a *RemoteError from the handler (or from the server:
// ErrUnknownKind, ErrTooLarge match it); ErrTooLarge when the request
// exceeds this end's or the server's MaxMessage (nothing is sent);
// ErrAuth when the pool keys differ; ctx's error (context.DeadlineExceeded
// or context.Canceled) when ctx ends first; ErrClosed after Close.
//
// A connection that breaks before the request is written whole is
// replaced and the request sent again; once written, a request is never
// resent, unless the server answers busy (ErrBusy): it did not read it. A
// handshake that the server cuts short and a busy answer are retried
// on a new connection after a short pause (5 to 100 ms, growing), until
// ctx ends: under a flood a member gets through, and a member over its
// MaxConns serves the call once a connection ends. A call that finds
// MaxConnsPerAddr others under way to addr waits for one of them to end.
func (c *Client) Call(ctx context.Context, addr, kind string, req, resp any) error {
	if kind == "" || len(kind) > MaxKindLen {
		return fmt.Errorf("transport: kind must be 1 to %d bytes, got %d", MaxKindLen, len(kind))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("transport: call %q to %s: %w", kind, addr, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	body, err := encodeBody(req)
	if err != nil {
		return fmt.Errorf("transport: encoding %q request: %w", kind, err)
	}
	msg := appendRequest(make([]byte, 0, requestHeader+len(kind)+len(body)), 0, kind, body)
	if len(msg) > c.cfg.MaxMessage {
		return fmt.Errorf("%w: %q request of %d bytes exceeds MaxMessage %d", ErrTooLarge, kind, len(msg), c.cfg.MaxMessage)
	}
	if err := c.enter(ctx, addr); err != nil {
		return c.callError(ctx, kind, addr, err)
	}
	defer c.leave(addr)
	var wait time.Duration
	resent := false
	for {
		cc, err := c.get(ctx, addr)
		if err != nil {
			var dropped *droppedError
			if errors.As(err, &dropped) && c.pause(ctx, &wait) {
				c.log.Debug("transport: the server cut the handshake short; retrying", "addr", addr, "kind", kind, "err", err)
				continue
			}
			return c.callError(ctx, kind, addr, err)
		}
		if len(msg) > cc.sec.maxSend {
			c.put(cc)
			return fmt.Errorf("%w: %q request of %d bytes exceeds the %d bytes that %s accepts",
				ErrTooLarge, kind, len(msg), cc.sec.maxSend, addr)
		}
		r, sent, err := c.roundTrip(ctx, cc, msg)
		if errors.Is(err, ErrBusy) {
			// The server did not read the request: send it again.
			c.discard(cc)
			if c.pause(ctx, &wait) {
				c.log.Debug("transport: server busy; retrying", "addr", addr, "kind", kind, "err", err)
				continue
			}
			return c.callError(ctx, kind, addr, err)
		}
		if err != nil {
			c.discard(cc)
			if !sent && ctx.Err() == nil && !c.isClosed() && (!resent || c.pause(ctx, &wait)) {
				resent = true
				c.log.Debug("transport: connection broke before the request was sent; retrying",
					"addr", addr, "kind", kind, "err", err)
				continue
			}
			return c.callError(ctx, kind, addr, err)
		}
		c.put(cc)
		if r.Err != nil {
			return r.Err
		}
		return DecodeResponse(kind, addr, r.Body, resp)
	}
}

// enter takes a place among the calls under way to addr, waiting for one
// within ctx.
func (c *Client) enter(ctx context.Context, addr string) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	places := c.calls[addr]
	if places == nil {
		places = make(chan struct{}, c.cfg.MaxConnsPerAddr)
		c.calls[addr] = places
	}
	c.mu.Unlock()
	select {
	case places <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for one of the %d calls under way to end: %w", c.cfg.MaxConnsPerAddr, ctx.Err())
	}
}

// leave gives back a place taken by enter.
func (c *Client) leave(addr string) {
	c.mu.Lock()
	places := c.calls[addr]
	c.mu.Unlock()
	<-places
}

// Pauses between the attempts of a call that the server turned away.
const (
	minRetryWait = 5 * time.Millisecond
	maxRetryWait = 100 * time.Millisecond
)

// pause waits before another attempt of a call, twice as long as the last
// time (*wait), with jitter. It reports false, at once, if ctx ends first
// or the client is closed.
func (c *Client) pause(ctx context.Context, wait *time.Duration) bool {
	*wait = min(max(2**wait, minRetryWait), maxRetryWait)
	t := time.NewTimer(*wait/2 + rand.N(*wait/2+1))
	defer t.Stop()
	select {
	case <-t.C:
		return ctx.Err() == nil && !c.isClosed()
	case <-ctx.Done():
		return false
	}
}

// droppedError is a handshake that the server cut short, by closing the
// connection: it had too many at once, and the call may try again.
type droppedError struct{ err error }

func (e *droppedError) Error() string { return e.err.Error() }
func (e *droppedError) Unwrap() error { return e.err }

// droppedByPeer reports whether a handshake failed because the server
// closed or reset the connection, rather than by a timeout or a failed check.
func droppedByPeer(err error) bool {
	return !isTimeout(err) && !errors.Is(err, ErrAuth) && !errors.Is(err, ErrProtocol) &&
		!errors.Is(err, ErrVersion) && !errors.Is(err, net.ErrClosed)
}

// roundTrip writes msg on cc and reads the response, all within ctx.
// sent reports whether the request was written whole.
func (c *Client) roundTrip(ctx context.Context, cc *clientConn, msg []byte) (r response, sent bool, err error) {
	dl, _ := ctx.Deadline()
	setRequestTimeout(msg, time.Until(dl))
	_ = cc.nc.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = cc.nc.SetDeadline(time.Unix(1, 0)) })
	var p []byte
	if sent, err = cc.sec.writeFrame(msg); err != nil {
		err = fmt.Errorf("sending request: %w", err)
	} else if p, err = cc.sec.readFrame(); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("server closed the connection before answering: %w", io.ErrUnexpectedEOF)
		}
		err = fmt.Errorf("awaiting response: %w", err)
	}
	if !stop() && err == nil {
		err = ctx.Err() // the deadline was cut short under a finished exchange
	}
	if err != nil {
		return r, sent, err
	}
	r, err = parseResponse(p)
	return r, true, err
}

// callError gives err the context of the call, and makes a failure caused
// by ctx or by Close say so.
func (c *Client) callError(ctx context.Context, kind, addr string, err error) error {
	switch {
	case c.isClosed():
		return fmt.Errorf("transport: call %q to %s: %w", kind, addr, ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("transport: call %q to %s: %w (%v)", kind, addr, ctx.Err(), err)
	case errors.Is(err, os.ErrDeadlineExceeded) && deadlinePassed(ctx):
		return fmt.Errorf("transport: call %q to %s: %w (%w)", kind, addr, context.DeadlineExceeded, err)
	}
	return fmt.Errorf("transport: call %q to %s: %w", kind, addr, err)
}

func deadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// Close closes every connection, idle or in use: calls in flight fail with
// ErrClosed, and so do later calls.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	for _, list := range c.idle {
		for _, cc := range list {
			cc.timer.Stop()
		}
	}
	c.idle = nil
	for cc := range c.open {
		_ = cc.nc.Close()
	}
	return nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
