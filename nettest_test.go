package mtcp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/migratory/mtcp/internal/memnet"
	"golang.org/x/net/nettest"
)

// pipeMaker returns a nettest.MakePipe that opens sessions through ln with d.
func pipeMaker(t *testing.T, ln *Listener, d *Dialer, addr string) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c1, err = d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, nil, nil, err
		}
		c2, err = ln.Accept()
		if err != nil {
			c1.Close()
			return nil, nil, nil, err
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	}
}

func TestNettestTCP(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nettest.TestConn(t, pipeMaker(t, ln, &Dialer{}, ln.Addr().String()))
}

func TestNettestPipe(t *testing.T) {
	mem := memnet.Listen("mem")
	ln, err := NewListener(mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nettest.TestConn(t, pipeMaker(t, ln, &Dialer{DialFunc: mem.Dial}, "mem"))
}
