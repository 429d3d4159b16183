package mtcp

import (
	"bytes"
	"errors"
	"net"
	"os"
	"time"

	"github.com/migratory/mtcp/internal/wire"
)

// sniff reads a new connection's first bytes to tell an mtcp client (which
// starts with wire.Preface) from a plain one. It stops at the first byte that
// differs from the preface, or after timeout with what it has. It returns
// the bytes read, to be replayed to a plain connection's reader.
func sniff(nc net.Conn, timeout time.Duration) (prefix []byte, isMTCP bool, err error) {
	_ = nc.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = nc.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, len(wire.Preface))
	n := 0
	for n < len(buf) {
		k, err := nc.Read(buf[n:])
		n += k
		if !bytes.HasPrefix(wire.Preface[:], buf[:n]) {
			return buf[:n], false, nil
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return buf[:n], false, nil // a silent client: plain
			}
			return nil, false, err
		}
	}
	return nil, true, nil
}

// plainConn is a connection from a client that does not speak mtcp, with
// the bytes read while sniffing put back in front.
type plainConn struct {
	net.Conn
	prefix []byte
}

func (c *plainConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// plainConnCloseWrite keeps half-close for connections that support it.
type plainConnCloseWrite struct{ *plainConn }

func (c plainConnCloseWrite) CloseWrite() error {
	return c.Conn.(interface{ CloseWrite() error }).CloseWrite()
}

func newPlainConn(nc net.Conn, prefix []byte) net.Conn {
	if len(prefix) == 0 {
		return nc
	}
	pc := &plainConn{Conn: nc, prefix: prefix}
	if _, ok := nc.(interface{ CloseWrite() error }); ok {
		return plainConnCloseWrite{pc}
	}
	return pc
}
