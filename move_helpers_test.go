package mtcp

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
)

// dialGate holds a client's first dial to one address until the test
// releases it (dialing is closed once it waits), and then fails it if the
// gate was made to fail; every other dial goes through.
type dialGate struct {
	target           string
	fail             bool
	dialing, release chan struct{}
	dials            atomic.Int32 // to target
}

func newDialGate(target string, fail bool) *dialGate {
	return &dialGate{target: target, fail: fail, dialing: make(chan struct{}), release: make(chan struct{})}
}

func (g *dialGate) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if address == g.target && g.dials.Add(1) == 1 {
		close(g.dialing)
		<-g.release
		if g.fail {
			return nil, errors.New("target unreachable (test)")
		}
	}
	return (&net.Dialer{}).DialContext(ctx, network, address)
}
