package scenario

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/memnet"
)

// pipeMaker returns a nettest.MakePipe that opens sessions through ln with
// d, and a function that waits until every session it opened has ended
// (after both Closes, a link a test broke resumed first), to call while
// the listener is still open.
func pipeMaker(t *testing.T, ln *mtcp.Listener, d *mtcp.Dialer, addr string) (nettest.MakePipe, func()) {
	var mu sync.Mutex
	var opened []net.Conn
	ended := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range opened {
			waitSessionEnd(t, c)
		}
	}
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
		mu.Lock()
		opened = append(opened, c1, c2)
		mu.Unlock()
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	}, ended
}

// nettestDetach is the listeners' detach timeout in the nettest suites. A
// link the suite breaks while both ends close (a write deadline interrupts a
// blocked write) can leave a server session that never hears its client's
// last acknowledgement; it then waits this long for the client, which has
// finished, like TCP's LAST-ACK: short here, so the leak check sees it end.
const nettestDetach = 2 * time.Second

func TestNettestTCP(t *testing.T) {
	ln, err := mtcp.Listen("tcp", "127.0.0.1:0", &mtcp.Config{DetachTimeout: nettestDetach})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	makePipe, ended := pipeMaker(t, ln, &mtcp.Dialer{}, ln.Addr().String())
	nettest.TestConn(t, makePipe)
	ended()
}

func TestNettestPipe(t *testing.T) {
	mem := memnet.Listen("mem")
	ln, err := mtcp.NewListener(mem, &mtcp.Config{DetachTimeout: nettestDetach, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	makePipe, ended := pipeMaker(t, ln, &mtcp.Dialer{DialFunc: mem.Dial, Logger: testLogger(t)}, "mem")
	nettest.TestConn(t, makePipe)
	ended()
}
