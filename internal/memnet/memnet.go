// Package memnet is an in-memory network of net.Pipe connections: a
// net.Listener whose Dial makes a pipe and hands the other end to Accept.
// Tests use it to run sessions without sockets.
package memnet

import (
	"context"
	"net"
	"sync"
)

// Addr is the address of an in-memory endpoint.
type Addr string

// Network returns "mem".
func (Addr) Network() string { return "mem" }

// String returns the address as it was listened on.
func (a Addr) String() string { return string(a) }

// Listener is an in-memory net.Listener.
type Listener struct {
	addr   Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

// Listen returns a listener named addr.
func Listen(addr string) *Listener {
	return &Listener{addr: Addr(addr), conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Accept waits for the next Dial.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "mem", Addr: l.addr, Err: net.ErrClosed}
	}
}

// Close stops the listener; pending and later Dials fail.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.addr }

// Dial connects to the listener through a new pipe.
func (l *Listener) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- &conn{Conn: server, local: l.addr, remote: Addr("client")}:
		return &conn{Conn: client, local: Addr("client"), remote: l.addr}, nil
	case <-l.closed:
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "mem", Addr: l.addr, Err: net.ErrClosed}
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "mem", Addr: l.addr, Err: ctx.Err()}
	}
}

// conn gives a pipe end real addresses.
type conn struct {
	net.Conn
	local, remote Addr
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }
