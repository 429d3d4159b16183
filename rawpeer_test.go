package mtcp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
)

// rawPeer speaks the mtcp wire protocol by hand over one TCP connection, so
// that a test can send what an honest peer never would and look at every
// frame that comes back.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	return newRawPeer(t, nc)
}

func newRawPeer(t testing.TB, nc net.Conn) *rawPeer {
	return &rawPeer{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (p *rawPeer) Close() { _ = p.nc.Close() }

// send writes the concatenation of parts in one write.
func (p *rawPeer) send(parts ...[]byte) {
	p.t.Helper()
	var b []byte
	for _, part := range parts {
		b = append(b, part...)
	}
	_ = p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := p.nc.Write(b)
	require.NoError(p.t, err)
}

// readFrame reads the next frame, waiting at most timeout.
func (p *rawPeer) readFrame(timeout time.Duration) (wire.Frame, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = p.nc.SetReadDeadline(time.Time{}) }()
	return wire.ReadFrame(p.br, nil)
}

// nextFrame reads frames, skipping keepalives and acknowledgements, until
// one of another type arrives.
func (p *rawPeer) nextFrame(timeout time.Duration) wire.Frame {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f, err := p.readFrame(time.Until(deadline))
		require.NoError(p.t, err, "reading a frame")
		switch f.(type) {
		case wire.Ack, wire.Ping, wire.Pong:
			continue
		}
		return f
	}
}

// expectRefused reads a REFUSED frame with the given code, then the end of
// the connection.
func (p *rawPeer) expectRefused(code wire.Code) wire.Refused {
	p.t.Helper()
	f, err := p.readFrame(5 * time.Second)
	require.NoError(p.t, err, "reading the answer")
	r, ok := f.(wire.Refused)
	require.True(p.t, ok, "got %v (%+v) instead of REFUSED", f.Type(), f)
	require.Equal(p.t, code, r.Code, "REFUSED code (reason %q)", r.Reason)
	p.expectClosed(5 * time.Second)
	return r
}

// expectAbort reads frames until an ABORT with the given code, then expects
// the end of the connection.
func (p *rawPeer) expectAbort(code wire.Code) wire.Abort {
	p.t.Helper()
	f := p.nextFrame(5 * time.Second)
	a, ok := f.(wire.Abort)
	require.True(p.t, ok, "got %v (%+v) instead of ABORT", f.Type(), f)
	require.Equal(p.t, code, a.Code, "ABORT code (reason %q)", a.Reason)
	p.expectClosed(5 * time.Second)
	return a
}

// expectClosed checks that the server ends the connection within timeout:
// a read returns EOF or a reset, not a timeout and not more frames.
func (p *rawPeer) expectClosed(timeout time.Duration) {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = p.nc.SetReadDeadline(time.Time{}) }()
	for {
		// Keepalives may still be in flight; anything else is unexpected.
		f, err := wire.ReadFrame(p.br, nil)
		if err == nil {
			switch f.(type) {
			case wire.Ack, wire.Ping, wire.Pong:
				continue
			}
			p.t.Fatalf("got %v (%+v) where the connection should have ended", f.Type(), f)
		}
		require.False(p.t, errors.Is(err, os.ErrDeadlineExceeded),
			"the server did not close the connection within %v", timeout)
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			var ne *net.OpError
			require.True(p.t, errors.As(err, &ne), "unexpected error %v", err)
		}
		return
	}
}

// rawHello is the HELLO of an honest client, with keepalives slow enough that
// a scripted peer need not answer them during a test.
func rawHello() wire.Hello {
	return wire.Hello{
		MinVersion: wire.Version, MaxVersion: wire.Version,
		Window: 1 << 20, Retention: 1 << 20,
		KeepAliveMillis: 5000, KeepAliveTimeoutMillis: 20000,
	}
}

// rawSession is a session opened by a rawPeer.
type rawSession struct {
	id      [wire.SessionIDLen]byte
	secret  auth.Secret
	welcome wire.Welcome
}

// open runs the opening handshake of a new session.
func (p *rawPeer) open() rawSession {
	p.t.Helper()
	kp, err := auth.NewKeyPair()
	require.NoError(p.t, err)
	h := rawHello()
	h.Key = kp.Pub
	p.send(wire.Preface[:], wire.AppendFrame(nil, h))
	f, err := p.readFrame(5 * time.Second)
	require.NoError(p.t, err)
	w, ok := f.(wire.Welcome)
	require.True(p.t, ok, "got %v (%+v) instead of WELCOME", f.Type(), f)
	secret, err := kp.DeriveSecret(w.Key, w.Session, kp.Pub, w.Key)
	require.NoError(p.t, err)
	return rawSession{id: w.Session, secret: secret, welcome: w}
}

// dialScripted dials addr with d while a rawPeer plays the server of the
// opening handshake on the connection accept returns: it reads the HELLO
// and answers WELCOME with the client's own keepalive timings. It returns
// the client's session, the peer (for the caller to close) and the session
// as the peer knows it.
func dialScripted(t testing.TB, d *Dialer, network, addr string, accept func() (net.Conn, error)) (net.Conn, *rawPeer, rawSession) {
	t.Helper()
	type dialResult struct {
		c   net.Conn
		err error
	}
	dialed := make(chan dialResult, 1)
	go func() {
		c, err := d.Dial(network, addr)
		dialed <- dialResult{c, err}
	}()
	nc, err := accept()
	require.NoError(t, err)
	srv := newRawPeer(t, nc)
	hello := srv.expectHello()
	require.False(t, hello.Resume)
	kp, err := auth.NewKeyPair()
	require.NoError(t, err)
	id := auth.SessionID()
	secret, err := kp.DeriveSecret(hello.Key, id, hello.Key, kp.Pub)
	require.NoError(t, err)
	w := wire.Welcome{
		Version: wire.Version, Session: id, Key: kp.Pub, Window: 1 << 20, Retention: 1 << 20,
		KeepAliveMillis: hello.KeepAliveMillis, KeepAliveTimeoutMillis: hello.KeepAliveTimeoutMillis,
	}
	srv.send(frame(w))
	r := <-dialed
	require.NoError(t, r.err)
	return r.c, srv, rawSession{id: id, secret: secret, welcome: w}
}

// resumeHello sends the preface and a resume HELLO for id with a fresh
// nonce, reads the CHALLENGE and returns both nonces.
func (p *rawPeer) resumeHello(id [wire.SessionIDLen]byte) (client, server [wire.NonceLen]byte) {
	p.t.Helper()
	h := rawHello()
	h.Resume, h.Session, h.Nonce = true, id, auth.Nonce()
	h.Attempt = rawAttempt(h.Nonce)
	p.send(wire.Preface[:], wire.AppendFrame(nil, h))
	f, err := p.readFrame(5 * time.Second)
	require.NoError(p.t, err)
	ch, ok := f.(wire.Challenge)
	require.True(p.t, ok, "got %v (%+v) instead of CHALLENGE", f.Type(), f)
	return h.Nonce, ch.Nonce
}

// rawResume is what the MACs of a resume started by resumeHello bind: its
// HELLO names no epoch and no origin.
func rawResume(id [wire.SessionIDLen]byte, client, server [wire.NonceLen]byte) auth.Resume {
	return auth.Resume{Session: id, ClientNonce: client, ServerNonce: server, Attempt: rawAttempt(client)}
}

// rawAttempts numbers the resume attempts of scripted peers, in the order
// of their client nonces' first use: each new attempt outnumbers the last.
var rawAttempts struct {
	sync.Mutex
	next uint64
	of   map[[wire.NonceLen]byte]uint64
}

// rawAttempt is the attempt number of the resume with client nonce n.
func rawAttempt(n [wire.NonceLen]byte) uint64 {
	rawAttempts.Lock()
	defer rawAttempts.Unlock()
	if rawAttempts.of == nil {
		rawAttempts.of = map[[wire.NonceLen]byte]uint64{}
	}
	a, ok := rawAttempts.of[n]
	if !ok {
		rawAttempts.next++
		a = rawAttempts.next
		rawAttempts.of[n] = a
	}
	return a
}

// header encodes a frame header without checking it.
func header(typ wire.Type, flags uint8, length uint32) []byte {
	return wire.AppendHeader(nil, wire.Header{Type: typ, Flags: flags, Length: length})
}

func frame(f wire.Frame) []byte { return wire.AppendFrame(nil, f) }

// readData reads DATA frames, skipping keepalives and acknowledgements, and
// checks that they carry the stream from position from on, until n bytes
// have arrived. It returns the bytes.
func (p *rawPeer) readData(from uint64, n int) []byte {
	p.t.Helper()
	var got []byte
	for len(got) < n {
		f := p.nextFrame(5 * time.Second)
		d, ok := f.(wire.Data)
		require.True(p.t, ok, "got %v (%+v) instead of DATA", f.Type(), f)
		require.Equal(p.t, from+uint64(len(got)), d.Seq, "DATA position")
		got = append(got, d.Payload...)
	}
	return got
}

// expectHello reads, as a server, the preface and a HELLO.
func (p *rawPeer) expectHello() wire.Hello {
	p.t.Helper()
	var pre [len(wire.Preface)]byte
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadFull(p.br, pre[:])
	require.NoError(p.t, err)
	require.Equal(p.t, wire.Preface, pre)
	f, err := p.readFrame(5 * time.Second)
	require.NoError(p.t, err)
	h, ok := f.(wire.Hello)
	require.True(p.t, ok, "got %v (%+v) instead of HELLO", f.Type(), f)
	return h
}

// readFirstData reads frames until a DATA frame arrives, skipping
// keepalives and acknowledgements, for at most timeout.
func (p *rawPeer) readFirstData(timeout time.Duration) (wire.Frame, error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := p.readFrame(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if _, ok := f.(wire.Data); ok {
			return f, nil
		}
	}
}

// expectAbortOrClose accepts either an ABORT with the given code followed by
// the end of the connection, or the end of the connection alone.
func (p *rawPeer) expectAbortOrClose(code wire.Code) {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = p.nc.SetReadDeadline(time.Time{}) }()
	for {
		f, err := wire.ReadFrame(p.br, nil)
		if err != nil {
			require.False(p.t, errors.Is(err, os.ErrDeadlineExceeded), "the server did not close the connection")
			return
		}
		switch f := f.(type) {
		case wire.Ack, wire.Ping, wire.Pong:
			continue
		case wire.Abort:
			require.Equal(p.t, code, f.Code, "ABORT code (reason %q)", f.Reason)
			p.expectClosed(5 * time.Second)
			return
		default:
			p.t.Fatalf("got %v (%+v) where the connection should have ended", f.Type(), f)
		}
	}
}
