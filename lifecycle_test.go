package mtcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestResumeTimeoutLosesSession: with the server gone for good, a client's
// Read and Write fail after the resume timeout with a typed error.
func TestResumeTimeoutLosesSession(t *testing.T) {
	ln, px := listenBehindProxy(t, nil)
	defer px.Close()
	d := &Dialer{ResumeTimeout: 500 * time.Millisecond, HandshakeTimeout: 200 * time.Millisecond}
	c, sc := acceptDialed(t, ln, d, px.Addr())
	defer sc.Close()

	px.Blackhole() // the server is unreachable from now on
	px.ResetAll()
	start := time.Now()
	_, err := c.Read(make([]byte, 10))
	elapsed := time.Since(start)
	require.ErrorIs(t, err, ErrSessionLost)
	require.ErrorIs(t, err, ErrResumeTimeout)
	var lost *SessionLostError
	require.ErrorAs(t, err, &lost)
	require.Equal(t, c.(*Conn).SessionID(), lost.SessionID)
	require.Less(t, elapsed, 5*time.Second, "the session is given up in about the resume timeout")
	_, err = c.Write([]byte("x"))
	require.ErrorIs(t, err, ErrSessionLost)
	require.NoError(t, c.Close())
	px.Heal()
	ln.Close()
}

// TestDetachTimeoutFreesSession: a server frees a session whose client
// does not come back, and the application's Read says why.
func TestDetachTimeoutFreesSession(t *testing.T) {
	ln, px := listenBehindProxy(t, &Config{DetachTimeout: 300 * time.Millisecond})
	defer ln.Close()
	defer px.Close()
	d := &Dialer{ResumeTimeout: 200 * time.Millisecond, HandshakeTimeout: 100 * time.Millisecond}
	c, sc := acceptDialed(t, ln, d, px.Addr())
	require.Equal(t, 1, ln.Sessions())

	px.Blackhole()
	px.ResetAll()
	_, err := sc.Read(make([]byte, 10))
	require.ErrorIs(t, err, ErrSessionLost)
	require.ErrorIs(t, err, ErrDetachTimeout)
	require.Equal(t, 0, ln.Sessions(), "the session is freed")
	require.NoError(t, sc.Close())
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, ErrSessionLost)
	require.NoError(t, c.Close())
	px.Heal()
}

// TestResumeIsNotAccepted: resumes never surface from Accept.
func TestResumeIsNotAccepted(t *testing.T) {
	ln, px := listenBehindProxy(t, nil)
	defer px.Close()
	c, err := (&Dialer{}).Dial("tcp", px.Addr())
	require.NoError(t, err)
	var accepted atomic.Int32
	conns := make(chan net.Conn, 10)
	go func() {
		for {
			sc, err := ln.Accept()
			if err != nil {
				close(conns)
				return
			}
			accepted.Add(1)
			conns <- sc
		}
	}()
	sc := <-conns
	for i := 0; i < 5; i++ {
		// The previous round trip went over a live link: cut it.
		require.GreaterOrEqual(t, px.ResetAll(), 1, "round %d: a link to cut", i)
		msg := []byte(fmt.Sprintf("message %d", i))
		_, err := c.Write(msg)
		require.NoError(t, err)
		got := make([]byte, len(msg))
		_, err = io.ReadFull(sc, got)
		require.NoError(t, err)
		require.Equal(t, msg, got)
		reply := []byte(fmt.Sprintf("reply %d", i))
		_, err = sc.Write(reply)
		require.NoError(t, err)
		got = make([]byte, len(reply))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		require.Equal(t, reply, got)
	}
	require.GreaterOrEqual(t, px.Resets(), int64(5), "every round resumed the session")
	require.Equal(t, int32(1), accepted.Load())
	require.NoError(t, c.Close())
	_, err = io.ReadAll(sc)
	require.NoError(t, err)
	require.NoError(t, sc.Close())
	waitSessionEnd(t, c)
	ln.Close()
	for range conns {
	}
}

// TestClientRoams: the client comes back from a new address each time and
// the server's view of it follows.
func TestClientRoams(t *testing.T) {
	srv := listenEcho(t, nil)
	ln := srv.ln
	var next atomic.Int32
	var links []net.Conn
	var mu = make(chan struct{}, 1)
	d := &Dialer{DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
		// Each link comes from another loopback address: 127.0.0.2, .3, ...
		ip := net.IPv4(127, 0, 0, byte(2+next.Add(1)))
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		nc, err := nd.DialContext(ctx, network, address)
		if err == nil {
			mu <- struct{}{}
			links = append(links, nc)
			<-mu
		}
		return nc, err
	}}
	c, err := d.Dial("tcp", srv.Addr())
	require.NoError(t, err)
	id := c.(*Conn).SessionID()
	// seen lists the client addresses the server end reported, one per link.
	var seen []string
	// followed checks that the server end's RemoteAddr is the local address
	// of link, the newest link of the client.
	followed := func(link net.Conn) {
		t.Helper()
		want := link.LocalAddr().String()
		var got string
		require.Eventually(t, func() bool {
			if sc := serverEnd(ln, id); sc != nil {
				got = sc.RemoteAddr().String()
			}
			return got == want
		}, 5*time.Second, 5*time.Millisecond, "the server end's RemoteAddr follows the client to %s (it says %s)", want, got)
		seen = append(seen, got)
	}
	const n = 8 << 20
	var cuts atomic.Int64
	cuts.Store(256 << 10)
	cut := 0 // links cut so far
	res := echoTransfer(c, n, 3, func(got int64) {
		if got < cuts.Load() {
			return
		}
		mu <- struct{}{}
		var last net.Conn
		if len(links) > cut && len(seen) < 6 { // a link not checked yet
			last = links[len(links)-1]
			cut = len(links)
		}
		<-mu
		if last != nil {
			followed(last)
			if len(seen) < 6 { // cut the newest link, once
				last.(*net.TCPConn).SetLinger(0)
				last.Close()
				cuts.Add(256 << 10)
			}
		}
	})
	t.Logf("the server end saw the client at %v", seen)
	require.Len(t, seen, 6, "five cuts: six links")
	for i, a := range seen {
		ip := a[:strings.LastIndex(a, ":")]
		require.True(t, strings.HasPrefix(ip, "127.0.0."), "link %d from %s", i, a)
		for _, b := range seen[:i] {
			require.NotEqual(t, ip, b[:strings.LastIndex(b, ":")], "link %d comes from a new address", i)
		}
	}
	require.NoError(t, c.Close())
	requireTransferOK(t, res, n, 3, srv.Digest(t))
	waitSessionEnd(t, c)
	require.GreaterOrEqual(t, next.Load(), int32(5), "the session moved across several client addresses")
}

// TestCloseSemantics: the peer reads the bytes written before Close and then
// io.EOF, its writes fail with ErrPeerClosed, and a second Close fails.
func TestCloseSemantics(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", nil)
	require.NoError(t, err)
	defer ln.Close()
	c, err := Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	sc, err := ln.Accept()
	require.NoError(t, err)

	closeWithLastWords(t, c, sc)
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = sc.Write([]byte("anyone there?"))
	}
	require.ErrorIs(t, werr, ErrPeerClosed)
	require.NoError(t, sc.Close())

	err = c.Close()
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = c.Write([]byte("x"))
	require.ErrorIs(t, err, net.ErrClosed)
	waitSessionEnd(t, c)
}

// TestHalfCloseSurvivesResets: a CloseWrite made before and during link
// failures still ends the peer's reading at the right byte.
func TestHalfCloseSurvivesResets(t *testing.T) {
	ln, px := listenBehindProxy(t, nil)
	defer ln.Close()
	defer px.Close()
	c, sc := acceptDialed(t, ln, &Dialer{}, px.Addr())

	_, err := c.Write([]byte("request"))
	require.NoError(t, err)
	require.NoError(t, c.(*Conn).CloseWrite())
	firstLink := sc.RemoteAddr().String()
	require.Equal(t, 1, px.ResetAll(), "the session's link is cut")
	got, err := io.ReadAll(sc) // EOF arrives despite the reset
	require.NoError(t, err)
	require.Equal(t, "request", string(got))
	_, err = c.Write([]byte("more"))
	require.ErrorIs(t, err, ErrWriteClosed)
	// Wait for the client to resume over a new link, so that the second
	// reset cuts it.
	require.Eventually(t, func() bool { return sc.RemoteAddr().String() != firstLink },
		5*time.Second, 5*time.Millisecond, "the client resumes after the first reset")

	_, err = sc.Write([]byte("response"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, px.ResetAll(), 1, "the resumed link is cut")
	require.GreaterOrEqual(t, px.Resets(), int64(2))
	require.NoError(t, sc.Close())
	got, err = io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, "response", string(got))
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
}

// TestDialErrors: dialing nothing fails with a net.OpError; a server that
// is not mtcp fails the handshake.
func TestDialErrors(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := raw.Addr().String()
	go func() {
		c, err := raw.Accept()
		if err == nil {
			c.Write([]byte("SSH-2.0-OpenSSH_9.0\r\n"))
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	_, err = (&Dialer{HandshakeTimeout: time.Second}).Dial("tcp", addr)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "dial", oe.Op)
	raw.Close()
	_, err = Dial("tcp", addr)
	require.Error(t, err)
	require.True(t, errors.As(err, &oe))
}

// TestCloseDuringReadEndsPromptly: Close while a Read waits on the link.
// The Read returns at once; the session must then end as soon as the
// server acknowledges the close, its acknowledgements read in the
// background, not at the link's next keepalive tick (half a minute away
// here).
func TestCloseDuringReadEndsPromptly(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t)})
	require.NoError(t, err)
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c) // until the client's close
		served <- err
	}()

	d := &Dialer{Logger: testLogger(t), KeepAlive: 50 * time.Second, KeepAliveTimeout: 60 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		read <- err
	}()
	time.Sleep(100 * time.Millisecond) // the Read waits on the link
	require.NoError(t, c.Close())
	require.True(t, errors.Is(<-read, net.ErrClosed))
	select {
	case <-c.(*Conn).endedCh:
	case <-time.After(10 * time.Second):
		t.Fatalf("the closed session did not end: %s", c.(*Conn).debugState())
	}
	require.NoError(t, c.(*Conn).Err(), "it finished cleanly")
	require.NoError(t, <-served)
}

// TestCloseAfterAcknowledgedCloseWrite: a client half-closes, its FIN is
// acknowledged, and later it closes. The server must acknowledge the CLOSE
// too, so that the client's session ends at once, cleanly, instead of
// waiting out its linger time and ending with ErrLingerTimeout.
func TestCloseAfterAcknowledgedCloseWrite(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t)})
	require.NoError(t, err)
	defer ln.Close()
	d := &Dialer{Logger: testLogger(t), ResumeTimeout: 5 * time.Second}
	c, sc := acceptDialed(t, ln, d, ln.Addr().String())
	defer sc.Close()

	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, c.(*Conn).CloseWrite())
	got, err := io.ReadAll(sc)
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))
	mc := c.(*Conn)
	require.Eventually(t, func() bool {
		mc.mu.Lock()
		defer mc.mu.Unlock()
		return mc.st.OutputDone()
	}, 5*time.Second, time.Millisecond, "the FIN is acknowledged")

	// The server keeps its end open; the client closes.
	start := time.Now()
	require.NoError(t, c.Close())
	select {
	case <-mc.endedCh:
	case <-time.After(3 * time.Second):
		t.Fatalf("the client's Close is not acknowledged after %v:\nclient: %s\nserver: %s",
			time.Since(start), mc.debugState(), sc.(*Conn).debugState())
	}
	require.NoError(t, mc.Err(), "the session ended cleanly")
	_, err = sc.Write([]byte("x"))
	require.ErrorIs(t, err, ErrPeerClosed)
}
