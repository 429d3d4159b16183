package mtcp

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"slices"
	"time"

	"github.com/migratory/mtcp/internal/wire"
)

// firstBytes is what a new connection's first bytes make of it.
type firstBytes int

const (
	clientMTCP   firstBytes = iota // it sent the preface
	clientPlain                    // it sent other bytes, or stayed silent where that means plain
	clientSilent                   // it said too little before its time ran out
)

// sniff reads a new connection's first bytes to tell an mtcp client (which
// starts with wire.Preface) from a plain one: it stops at the first byte
// that differs from the preface (plain) or at the whole preface (mtcp).
// Silence decides nothing by itself: a client that has not shown which it
// is by deadline is clientSilent, unless silentPlain is positive: then a
// client that has not sent the whole preface after silentPlain (or by
// deadline) is plain (the user serves a protocol in which the server speaks
// first). It reads through br, the handshake's reader, so that the HELLO
// that comes with the preface is read with it, in one read: an mtcp
// client's preface is taken from br, and what follows stays there. It
// returns the bytes read (all that br holds), to be replayed to a plain
// connection's reader.
func sniff(br *bufio.Reader, nc net.Conn, deadline time.Time, silentPlain time.Duration) (prefix []byte, class firstBytes, err error) {
	d := deadline
	if silentPlain > 0 {
		d = minTime(d, time.Now().Add(silentPlain))
	}
	_ = nc.SetReadDeadline(d)
	defer func() { _ = nc.SetReadDeadline(time.Time{}) }()
	for {
		got, _ := br.Peek(br.Buffered())
		if !bytes.HasPrefix(wire.Preface[:], got[:min(len(got), len(wire.Preface))]) {
			return slices.Clone(got), clientPlain, nil
		}
		if len(got) >= len(wire.Preface) {
			_, _ = br.Discard(len(wire.Preface))
			return nil, clientMTCP, nil
		}
		if _, err := br.Peek(len(got) + 1); err != nil {
			got, _ = br.Peek(br.Buffered())
			if !bytes.HasPrefix(wire.Preface[:], got) {
				return slices.Clone(got), clientPlain, nil
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, clientSilent, err
			}
			if silentPlain > 0 {
				return slices.Clone(got), clientPlain, nil // silent where that means plain
			}
			return slices.Clone(got), clientSilent, nil
		}
	}
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
