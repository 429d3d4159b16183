package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// clientConn is one authenticated outbound connection.
type clientConn struct {
	addr  string
	nc    net.Conn
	br    *bufio.Reader
	sec   *secureConn
	timer *time.Timer // closes the connection when it idles too long in the pool
}

// usable reports whether an idle connection still looks open: nothing
// unread, and (on TCP) no end of stream or reset waiting.
func (cc *clientConn) usable() bool {
	return cc.br.Buffered() == 0 && alive(cc.nc)
}

// get returns an idle connection to addr that still looks open, or dials one.
func (c *Client) get(ctx context.Context, addr string) (*clientConn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		list := c.idle[addr]
		if len(list) == 0 {
			c.mu.Unlock()
			break
		}
		cc := list[len(list)-1] // the most recently used
		list[len(list)-1] = nil
		if len(list) == 1 {
			delete(c.idle, addr)
		} else {
			c.idle[addr] = list[:len(list)-1]
		}
		expired := !cc.timer.Stop()
		c.mu.Unlock()
		if expired || !cc.usable() {
			c.discard(cc)
			continue
		}
		return cc, nil
	}
	return c.dial(ctx, addr)
}

// put returns a healthy connection to the pool, or closes it when the pool
// for its address is full or the client closed.
func (c *Client) put(cc *clientConn) {
	_ = cc.nc.SetDeadline(time.Time{})
	c.mu.Lock()
	if c.closed || len(c.idle[cc.addr]) >= c.cfg.MaxIdlePerAddr {
		c.mu.Unlock()
		c.discard(cc)
		return
	}
	cc.timer = time.AfterFunc(c.cfg.IdleTimeout/2, func() { c.expire(cc) })
	c.idle[cc.addr] = append(c.idle[cc.addr], cc)
	c.mu.Unlock()
}

// expire closes cc if it is still idle in the pool.
func (c *Client) expire(cc *clientConn) {
	c.mu.Lock()
	list := c.idle[cc.addr]
	i := slices.Index(list, cc)
	switch {
	case i < 0:
	case len(list) == 1:
		delete(c.idle, cc.addr)
	default:
		c.idle[cc.addr] = slices.Delete(list, i, i+1)
	}
	c.mu.Unlock()
	if i >= 0 {
		c.discard(cc)
	}
}

// discard closes a connection that is in no idle list.
func (c *Client) discard(cc *clientConn) {
	c.mu.Lock()
	delete(c.open, cc)
	c.mu.Unlock()
	_ = cc.nc.Close()
}

// dial opens and authenticates a new connection to addr, within ctx and
// HandshakeTimeout.
func (c *Client) dial(ctx context.Context, addr string) (*clientConn, error) {
	hctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	var (
		nc  net.Conn
		err error
	)
	if c.cfg.Dial != nil {
		nc, err = c.cfg.Dial(hctx, addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(hctx, "tcp", addr)
	}
	if err != nil {
		return nil, c.dialError(ctx, hctx, "dialing", err)
	}
	cc := &clientConn{addr: addr, nc: nc, br: bufio.NewReaderSize(nc, readBufSize)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = nc.Close()
		return nil, ErrClosed
	}
	c.open[cc] = struct{}{}
	c.mu.Unlock()

	dl, _ := hctx.Deadline()
	_ = nc.SetDeadline(dl)
	stop := context.AfterFunc(hctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	hs, err := clientHandshake(nc, cc.br, &c.cfg, c.authKey)
	if !stop() && err == nil {
		err = hctx.Err()
	}
	if err != nil {
		c.discard(cc)
		if ctx.Err() == nil && hctx.Err() == nil && droppedByPeer(err) {
			err = &droppedError{err}
		}
		return nil, c.dialError(ctx, hctx, "handshake", err)
	}
	cc.sec = hs.sec
	return cc, nil
}

// dialError names a failure of dialing or of the handshake, and says so
// when HandshakeTimeout (rather than the call's ctx) cut it short.
func (c *Client) dialError(ctx, hctx context.Context, what string, err error) error {
	if ctx.Err() == nil && (hctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("%s: timed out after HandshakeTimeout %v: %w", what, c.cfg.HandshakeTimeout, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
