package mtcp

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slowStartConn delays the first write on a connection: the first bytes of
// a client on a path whose round trip is long, or of a client slowed by a
// busy machine.
type slowStartConn struct {
	net.Conn
	delay time.Duration
	once  sync.Once
}

func (c *slowStartConn) Write(p []byte) (int, error) {
	c.once.Do(func() { time.Sleep(c.delay) })
	return c.Conn.Write(p)
}

// TestSlowMTCPClientIsNotServedPlain: an mtcp client whose first bytes
// arrive late (here 1.5 s, over the first-byte wait the listener used to
// have by default) is still an mtcp client. The listener waits for the
// first bytes and classifies by them; it never hands the handshake to the
// application as the data of a plain connection.
func TestSlowMTCPClientIsNotServedPlain(t *testing.T) {
	ln, accepted, stop := hsListener(t, Config{HandshakeTimeout: 5 * time.Second})
	defer stop()
	d := &Dialer{Logger: testLogger(t), HandshakeTimeout: 10 * time.Second,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			var nd net.Dialer
			nc, err := nd.DialContext(ctx, network, address)
			if err != nil {
				return nil, err
			}
			return &slowStartConn{Conn: nc, delay: 1500 * time.Millisecond}, nil
		}}
	type dialed struct {
		c   net.Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		c, err := d.Dial("tcp", ln.Addr().String())
		done <- dialed{c, err}
	}()
	var sc net.Conn
	select {
	case sc = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing was accepted")
	}
	_, isSession := sc.(*Conn)
	if !isSession {
		sc.Close()
	}
	require.True(t, isSession, "the slow mtcp client is served as %T", sc)
	r := <-done
	require.NoError(t, r.err)
	go func() { _, _ = copyEcho(sc) }()
	echoOnce(t, r.c, "slow but mtcp")
	closeHonest(t, r.c)
	sc.Close()
}

// copyEcho echoes c until it ends.
func copyEcho(c net.Conn) (int64, error) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := c.Read(buf)
		if k > 0 {
			if _, werr := c.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err != nil {
			return n, err
		}
	}
}

// TestSilentClientIsNotPlainByDefault: without a FirstByteTimeout, a
// client that says nothing is neither mtcp nor plain: it is closed at the
// handshake timeout and never reaches Accept.
func TestSilentClientIsNotPlainByDefault(t *testing.T) {
	const handshake = 1500 * time.Millisecond
	ln, accepted, stop := hsListener(t, Config{HandshakeTimeout: handshake})
	defer stop()
	start := time.Now()
	p := dialRaw(t, ln.Addr().String())
	defer p.Close()
	_ = p.nc.SetReadDeadline(time.Now().Add(handshake + 5*time.Second))
	_, err := p.br.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the silent client was closed")
	t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
	select {
	case c := <-accepted:
		c.Close()
		t.Fatalf("a silent client reached Accept as %T", c)
	default:
	}
}
