package mtcp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
)

// echoOnce sends msg on c and reads it back.
func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	_, err := c.Write([]byte(msg))
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err, "echo of %q", msg)
	require.Equal(t, msg, string(got))
}

// closeHonest closes a client session and waits for it to end.
func closeHonest(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.Close())
	waitSessionEnd(t, c)
}

// helloFrame returns the encoding of h with its body bytes patched by edit.
func helloFrame(h wire.Hello, edit func(body []byte)) []byte {
	b := frame(h)
	if edit != nil {
		edit(b[wire.HeaderLen:])
	}
	return b
}

// TestHostileHandshakes sends the listener, after the preface, what no
// honest client sends. Each connection must get a REFUSED frame with the
// right code and be closed at once, and an honest session opened before
// must not notice.
func TestHostileHandshakes(t *testing.T) {
	srv, honest := listenEchoHonest(t, &Config{Logger: testLogger(t), HandshakeTimeout: 2 * time.Second})
	ln := srv.ln
	defer closeHonest(t, honest)
	addr := srv.Addr()
	echoOnce(t, honest, "before")

	zeroKey := rawHello()
	unknown := rawHello()
	unknown.Resume, unknown.Session, unknown.Nonce = true, auth.SessionID(), auth.Nonce()
	newHello := func() wire.Hello {
		kp, err := auth.NewKeyPair()
		require.NoError(t, err)
		h := rawHello()
		h.Key = kp.Pub
		return h
	}
	versions := func(lo, hi uint8) []byte {
		return helloFrame(newHello(), func(b []byte) { b[0], b[1] = lo, hi })
	}
	smallWindow := newHello()
	smallWindow.Window = 100

	cases := []struct {
		name string
		send [][]byte
		code wire.Code
	}{
		{"garbage after the preface", [][]byte{[]byte("this is not a frame at all, only text")}, wire.CodeProtocol},
		{"DATA of 4 GiB", [][]byte{header(wire.TypeData, 0, 0xFFFFFFFF)}, wire.CodeProtocol},
		{"HELLO of 4 GiB", [][]byte{header(wire.TypeHello, 0, 0xFFFFFFFF)}, wire.CodeProtocol},
		{"extension frame over 64 KiB", [][]byte{header(0x80, 0, wire.MaxExtensionBody+1)}, wire.CodeProtocol},
		{"extension frame of 4 GiB", [][]byte{header(0xFF, 0, 0xFFFFFFFF)}, wire.CodeProtocol},
		{"unknown frame type", [][]byte{header(0x42, 0, 8), make([]byte, 8)}, wire.CodeProtocol},
		{"reserved header bits", [][]byte{func() []byte { b := frame(newHello()); b[3] = 1; return b }()}, wire.CodeProtocol},
		{"undefined HELLO flags", [][]byte{func() []byte { b := frame(newHello()); b[1] = 0x80; return b }()}, wire.CodeProtocol},
		{"DATA instead of HELLO", [][]byte{frame(wire.Data{Seq: 0, Payload: []byte("hi")})}, wire.CodeProtocol},
		{"PROOF instead of HELLO", [][]byte{frame(wire.Proof{})}, wire.CodeProtocol},
		{"HELLO with version 0", [][]byte{versions(0, 0)}, wire.CodeProtocol},
		{"HELLO with versions 3..2", [][]byte{versions(3, 2)}, wire.CodeProtocol},
		{"HELLO for versions 2..9 only", [][]byte{versions(2, 9)}, wire.CodeVersion},
		{"HELLO with an unknown mode", [][]byte{helloFrame(newHello(), func(b []byte) { b[2] = 7 })}, wire.CodeProtocol},
		{"HELLO with keepalive 0", [][]byte{helloFrame(newHello(), func(b []byte) { b[12], b[13] = 0, 0 })}, wire.CodeProtocol},
		{"HELLO with a window of 100 bytes", [][]byte{frame(smallWindow)}, wire.CodeProtocol},
		{"HELLO with an all-zero key", [][]byte{frame(zeroKey)}, wire.CodeProtocol},
		{"resume HELLO for an unknown session", [][]byte{frame(unknown)}, wire.CodeUnknownSession},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := dialRaw(t, addr)
			defer p.Close()
			start := time.Now()
			p.send(append([][]byte{wire.Preface[:]}, tc.send...)...)
			r := p.expectRefused(tc.code)
			require.NotEmpty(t, r.Reason, "the refusal says why")
			require.Less(t, time.Since(start), time.Second, "refused at once, not at the handshake timeout")
			t.Logf("refused: %s", r.Reason)
		})
	}
	require.Equal(t, 1, ln.Sessions(), "no refused handshake left a session behind")
	echoOnce(t, honest, "after")
}

// TestHostileHandshakeTruncated sends the preface and part of a HELLO,
// then half-closes: the listener must refuse it as soon as the bytes end.
func TestHostileHandshakeTruncated(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t)})
	require.NoError(t, err)
	defer ln.Close()
	p := dialRaw(t, ln.Addr().String())
	defer p.Close()
	start := time.Now()
	p.send(wire.Preface[:], frame(rawHello())[:20])
	require.NoError(t, p.nc.(*net.TCPConn).CloseWrite())
	p.expectRefused(wire.CodeProtocol)
	require.Less(t, time.Since(start), 2*time.Second, "refused when the bytes ended, not at the handshake timeout")
}

// TestOversizedFramesCostLittleMemory sends many frame headers that claim
// huge bodies; the listener must refuse them from the header alone, without
// allocating anything near what they claim.
func TestOversizedFramesCostLittleMemory(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", &Config{Logger: testLogger(t)})
	require.NoError(t, err)
	defer ln.Close()
	headers := [][]byte{
		header(wire.TypeData, 0, 0xFFFFFFFF),
		header(wire.TypeHello, 0, 1<<30),
		header(wire.TypeAbort, 0, 0xFFFFFFFF),
		header(0x80, 0, 0xFFFFFFFF),
		header(0xFE, 0, 16<<20),
	}
	const rounds = 40
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < rounds; i++ {
		p := dialRaw(t, ln.Addr().String())
		p.send(wire.Preface[:], headers[i%len(headers)])
		p.expectRefused(wire.CodeProtocol)
		p.Close()
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d refused headers cost %d KiB of allocations in all", rounds, alloc>>10)
	// Each handshake needs a read buffer and a goroutine, a few tens of KiB;
	// one body of the claimed size would be at least 16 MiB.
	require.Less(t, alloc, uint64(rounds*256<<10), "allocations bounded by the header checks")
}

// hostileFrames are frames that break the protocol on an established link.
func hostileFrames(window int) []struct {
	name     string
	send     [][]byte
	afterEOF bool // the application reads the FIN's end of stream first
} {
	return []struct {
		name     string
		send     [][]byte
		afterEOF bool
	}{
		{"DATA of 4 GiB", [][]byte{header(wire.TypeData, 0, 0xFFFFFFFF)}, false},
		{"extension frame over 64 KiB", [][]byte{header(0x80, 0, wire.MaxExtensionBody+1)}, false},
		{"unknown frame type", [][]byte{header(0x42, 0, 8), make([]byte, 8)}, false},
		{"reserved header bits", [][]byte{func() []byte { b := frame(wire.Ping{}); b[2] = 1; return b }()}, false},
		{"undefined ACK flags", [][]byte{func() []byte { b := frame(wire.Ack{Limit: 1 << 20}); b[1] = 0x02; return b }()}, false},
		{"DATA that leaves a gap", [][]byte{frame(wire.Data{Seq: 100, Payload: []byte("x")})}, false},
		{"DATA past the window", [][]byte{frame(wire.Data{Seq: 0, Payload: make([]byte, window+1)})}, false},
		{"ACK releasing bytes never sent", [][]byte{frame(wire.Ack{Limit: 1 << 20, Release: 10})}, false},
		{"ACK moving the limit back", [][]byte{frame(wire.Ack{Limit: 10})}, false},
		{"HELLO on an established link", [][]byte{frame(rawHello())}, false},
		{"DATA after FIN", [][]byte{frame(wire.Fin{End: 0}), frame(wire.Data{Seq: 0, Payload: []byte("late")})}, true},
		{"FIN moving the end", [][]byte{frame(wire.Fin{End: 0}), frame(wire.Fin{End: 5})}, true},
	}
}

// runHostileFrames opens a session by hand for each hostile frame and sends
// it. The server must close the link, its application must see the session
// lost with ErrProtocol, and the listener must forget the session. With
// wantAbort, the server must also say why with an ABORT (protocol error)
// before it closes, as spec.md (sections 3 and 7) asks.
func runHostileFrames(t *testing.T, wantAbort bool) {
	const window = 16 << 10
	ln, accepted, stop := hsListener(t, Config{Window: window})
	defer stop()

	for _, tc := range hostileFrames(window) {
		t.Run(tc.name, func(t *testing.T) {
			p := dialRaw(t, ln.Addr().String())
			defer p.Close()
			p.open()
			sc := acceptWithin(t, accepted, 5*time.Second, "the session")
			defer sc.Close()
			readErr := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, sc)
				readErr <- err
			}()

			p.send(tc.send...)
			if wantAbort {
				a := p.expectAbort(wire.CodeProtocol)
				t.Logf("aborted: %s", a.Reason)
			} else {
				p.expectAbortOrClose(wire.CodeProtocol)
			}
			select {
			case err := <-readErr:
				if tc.afterEOF {
					require.NoError(t, err, "the FIN ended the input cleanly")
					_, err = sc.Write([]byte("x"))
				}
				require.ErrorIs(t, err, ErrSessionLost)
				require.ErrorIs(t, err, ErrProtocol)
			case <-time.After(5 * time.Second):
				t.Fatal("the server application did not see the session fail")
			}
			require.Eventually(t, func() bool { return ln.Sessions() == 0 }, 5*time.Second, 10*time.Millisecond,
				"the listener forgot the failed session")
		})
	}
}

// TestHostileFramesOnEstablishedLink breaks the protocol on established
// links: each session fails at once with ErrProtocol and is freed.
func TestHostileFramesOnEstablishedLink(t *testing.T) {
	runHostileFrames(t, false)
}

// TestProtocolErrorIsAnnouncedWithAbort asks, on top of that, for the ABORT
// frame that tells the peer why its session failed. Without it an mtcp
// client takes the closed link for a network failure, resumes, and reports
// "unknown session" instead of the protocol error; and a server whose client
// aborted keeps the dead session for the whole detach timeout.
func TestProtocolErrorIsAnnouncedWithAbort(t *testing.T) {
	runHostileFrames(t, true)
}

// TestExtensionFramesAreSkipped checks the other side of the extension rule:
// an unknown extension frame within 64 KiB is read, dropped, and the session
// goes on.
func TestExtensionFramesAreSkipped(t *testing.T) {
	srv := listenEcho(t, &Config{Logger: testLogger(t)})
	p := dialRaw(t, srv.Addr())
	defer p.Close()
	p.open()
	p.send(
		frame(wire.Data{Seq: 0, Payload: []byte("one ")}),
		frame(wire.Extension{Kind: 0x80, Body: make([]byte, wire.MaxExtensionBody)}),
		frame(wire.Extension{Kind: 0xFF, Flags: 0xFF}),
		frame(wire.Data{Seq: 4, Payload: []byte("two")}),
	)
	require.Equal(t, "one two", string(p.readData(0, len("one two"))))
}

// TestResumeProofs attacks the resume handshake: a proof with a wrong MAC,
// and a proof that was accepted once, replayed on a new connection (the
// server's fresh nonce makes it worthless). Both must be refused with code 4
// and leave the session working for its real client.
func TestResumeProofs(t *testing.T) {
	srv := listenEcho(t, &Config{Logger: testLogger(t), HandshakeTimeout: 2 * time.Second})
	addr := srv.Addr()

	t.Run("wrong MAC for a live session", func(t *testing.T) {
		honest := dialHonest(t, addr)
		defer closeHonest(t, honest)
		echoOnce(t, honest, "before")
		id := honest.(*Conn).id

		p := dialRaw(t, addr)
		defer p.Close()
		p.resumeHello(id)
		var mac [wire.MACLen]byte
		copy(mac[:], "not the session's secret at all!")
		p.send(frame(wire.Proof{MAC: mac}))
		p.expectRefused(wire.CodeBadProof)

		// The real client's link was never touched.
		honest.(*Conn).mu.Lock()
		link := honest.(*Conn).link
		honest.(*Conn).mu.Unlock()
		echoOnce(t, honest, "after a bad proof")
		honest.(*Conn).mu.Lock()
		require.Same(t, link, honest.(*Conn).link, "the session stayed on its link")
		honest.(*Conn).mu.Unlock()
	})

	t.Run("proof computed for another server nonce", func(t *testing.T) {
		honest := dialHonest(t, addr)
		defer closeHonest(t, honest)
		hc := honest.(*Conn)
		echoOnce(t, honest, "before")

		// Whoever holds the secret computes a valid proof for one challenge...
		p1 := dialRaw(t, addr)
		defer p1.Close()
		cn, sn1 := p1.resumeHello(hc.id)
		hc.mu.Lock()
		pos := hc.st.Positions()
		hc.mu.Unlock()
		proof := frame(wire.Proof{MAC: rawResume(hc.id, cn, sn1).ClientMAC(hc.secret, wire.Proof{Positions: pos}.Fields()), Positions: pos})
		p1.Close()

		// ...which is no good for the next one, even with the same client nonce.
		p2, ch := replayResumeHello(t, addr, hc.id, cn)
		defer p2.Close()
		require.NotEqual(t, sn1, ch.Nonce, "every CHALLENGE has a fresh nonce")
		p2.send(proof)
		p2.expectRefused(wire.CodeBadProof)
		echoOnce(t, honest, "after a replayed proof")
	})

	t.Run("accepted proof replayed", func(t *testing.T) {
		p := dialRaw(t, addr)
		defer p.Close()
		s := p.open()
		p.send(frame(wire.Data{Seq: 0, Payload: []byte("abc")}))
		require.Equal(t, "abc", string(p.readData(0, 3)))

		// A genuine resume: the proof is accepted and the old link closed.
		p2 := dialRaw(t, addr)
		defer p2.Close()
		cn, sn := p2.resumeHello(s.id)
		pos := wire.Positions{Received: 3, Limit: 3 + 1<<20, Release: 3, Written: 3}
		proof := frame(wire.Proof{MAC: rawResume(s.id, cn, sn).ClientMAC(s.secret, wire.Proof{Positions: pos}.Fields()), Positions: pos})
		p2.send(proof)
		f := p2.nextFrame(5 * time.Second)
		r, ok := f.(wire.Resumed)
		require.True(t, ok, "got %v (%+v) instead of RESUMED", f.Type(), f)
		require.True(t, auth.Equal(r.MAC, rawResume(s.id, cn, sn).ServerMAC(s.secret, r.Fields())), "the server proves the secret")
		require.Equal(t, uint64(3), r.Received)
		p.expectClosed(5 * time.Second)

		// Someone who recorded that exchange sends it again, byte for byte.
		p3, _ := replayResumeHello(t, addr, s.id, cn)
		defer p3.Close()
		p3.send(proof)
		p3.expectRefused(wire.CodeBadProof)

		// The session goes on on the genuine link.
		p2.send(frame(wire.Data{Seq: 3, Payload: []byte("def")}))
		require.Equal(t, "def", string(p2.readData(3, 3)))
	})
}

// replayResumeHello sends, on a new connection to addr, a resume HELLO for
// session id with the client nonce cn of an earlier attempt, as one who
// recorded that attempt would, and returns the connection and the
// CHALLENGE the listener answers with.
func replayResumeHello(t *testing.T, addr string, id [wire.SessionIDLen]byte, cn [wire.NonceLen]byte) (*rawPeer, wire.Challenge) {
	t.Helper()
	p := dialRaw(t, addr)
	h := rawHello()
	h.Resume, h.Session, h.Nonce, h.Attempt = true, id, cn, rawAttempt(cn)
	p.send(wire.Preface[:], frame(h))
	f, err := p.readFrame(5 * time.Second)
	require.NoError(t, err)
	ch, ok := f.(wire.Challenge)
	require.True(t, ok, "got %v instead of CHALLENGE", f.Type())
	return p, ch
}

// hsDialRaw starts an hsListener with cfg and opens a connection to it by
// hand. It returns the connection, what the listener accepts, and a
// function that closes the connection and stops the listener.
func hsDialRaw(t *testing.T, cfg Config) (*rawPeer, <-chan net.Conn, func()) {
	t.Helper()
	ln, accepted, stop := hsListener(t, cfg)
	p := dialRaw(t, ln.Addr().String())
	return p, accepted, func() {
		p.Close()
		stop()
	}
}

// expectSilentClose checks that the listener closes the connection within
// bound without sending anything to who (the kind of client).
func (p *rawPeer) expectSilentClose(bound time.Duration, who string) {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(bound))
	n, err := p.br.Read(make([]byte, 1))
	require.Equal(p.t, 0, n, "nothing is sent to %s", who)
	require.Error(p.t, err)
	require.False(p.t, errors.Is(err, os.ErrDeadlineExceeded), "closed within %v", bound)
}

// hsListener starts a listener with short sniffing and handshake timeouts
// and collects what it accepts.
func hsListener(t *testing.T, cfg Config) (*Listener, <-chan net.Conn, func()) {
	t.Helper()
	cfg.Logger = testLogger(t)
	ln, err := Listen("tcp", "127.0.0.1:0", &cfg)
	require.NoError(t, err)
	accepted := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return ln, accepted, func() {
		ln.Close()
		<-done
		for {
			select {
			case c := <-accepted:
				c.Close()
				continue
			default:
			}
			return
		}
	}
}

// acceptWithin returns the next connection from accepted, failing the test
// if none comes within d (what names the connection awaited).
func acceptWithin(t *testing.T, accepted <-chan net.Conn, d time.Duration, what string) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		return c
	case <-time.After(d):
		t.Fatalf("%s was not accepted", what)
		return nil
	}
}

// requireNotAccepted fails the test if a connection (what) has reached
// Accept.
func requireNotAccepted(t *testing.T, accepted <-chan net.Conn, what string) {
	t.Helper()
	select {
	case c := <-accepted:
		c.Close()
		t.Fatalf("%s reached Accept", what)
	default:
	}
}

// TestSilentAndStalledClients covers connections that say nothing, stop
// in the middle of the preface, or stop after it. Each one is served as a
// plain connection or closed, within a bounded time, as the configuration
// says.
func TestSilentAndStalledClients(t *testing.T) {
	const firstByte = 150 * time.Millisecond
	const handshake = 400 * time.Millisecond
	const bound = 3 * time.Second // generous: the machine is noisy

	t.Run("silent client is served as plain", func(t *testing.T) {
		start := time.Now()
		p, accepted, stop := hsDialRaw(t, Config{FirstByteTimeout: firstByte, HandshakeTimeout: handshake})
		defer stop()
		sc := acceptWithin(t, accepted, bound, "the silent connection")
		defer sc.Close()
		require.GreaterOrEqual(t, time.Since(start), firstByte/2, "served after the first-byte timeout")
		_, isSession := sc.(*Conn)
		require.False(t, isSession, "a silent client is not an mtcp session")
		// The server speaks first, as SMTP does.
		_, err := sc.Write([]byte("220 ready\r\n"))
		require.NoError(t, err)
		_ = p.nc.SetReadDeadline(time.Now().Add(bound))
		line := make([]byte, len("220 ready\r\n"))
		_, err = io.ReadFull(p.br, line)
		require.NoError(t, err)
		require.Equal(t, "220 ready\r\n", string(line))
	})

	t.Run("partial preface is served as plain with its bytes", func(t *testing.T) {
		p, accepted, stop := hsDialRaw(t, Config{FirstByteTimeout: firstByte, HandshakeTimeout: handshake})
		defer stop()
		p.send(wire.Preface[:3])
		sc := acceptWithin(t, accepted, bound, "the stalled connection")
		defer sc.Close()
		_, isSession := sc.(*Conn)
		require.False(t, isSession)
		p.send([]byte("rest"))
		require.NoError(t, sc.SetReadDeadline(time.Now().Add(bound)))
		got := make([]byte, 3+len("rest"))
		_, err := io.ReadFull(sc, got)
		require.NoError(t, err)
		require.Equal(t, append(wire.Preface[:3:3], "rest"...), got, "the sniffed bytes are replayed first")
	})

	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"silent client is closed with RejectPlain", nil},
		{"partial preface is closed with RejectPlain", wire.Preface[:5]},
		{"plain bytes are closed with RejectPlain", []byte("GET / HTTP/1.0\r\n\r\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			p, accepted, stop := hsDialRaw(t, Config{FirstByteTimeout: firstByte, HandshakeTimeout: handshake, RejectPlain: true})
			defer stop()
			if tc.send != nil {
				p.send(tc.send)
			}
			p.expectSilentClose(bound, "a rejected client")
			t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
			requireNotAccepted(t, accepted, "a rejected connection")
		})
	}

	t.Run("silence after the preface is refused at the handshake timeout", func(t *testing.T) {
		start := time.Now()
		p, _, stop := hsDialRaw(t, Config{FirstByteTimeout: firstByte, HandshakeTimeout: handshake})
		defer stop()
		p.send(wire.Preface[:])
		p.expectRefused(wire.CodeProtocol)
		el := time.Since(start)
		require.GreaterOrEqual(t, el, handshake/2)
		require.Less(t, el, bound)
	})

	t.Run("trickled HELLO is cut at the handshake timeout", func(t *testing.T) {
		start := time.Now()
		p, _, stop := hsDialRaw(t, Config{FirstByteTimeout: firstByte, HandshakeTimeout: handshake})
		defer stop()
		p.send(wire.Preface[:])
		// One byte every 20 ms: the whole HELLO would take over a second, and
		// every read makes progress, so only an overall deadline stops it.
		hello := frame(rawHello())
		stopTrickle := make(chan struct{})
		trickled := make(chan struct{})
		go func() {
			defer close(trickled)
			for _, b := range hello[:len(hello)-1] {
				select {
				case <-stopTrickle:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := p.nc.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
		defer func() { close(stopTrickle); <-trickled }()
		p.expectRefused(wire.CodeProtocol)
		require.Less(t, time.Since(start), bound)
	})

	t.Run("silent client on a TLS listener is closed at the handshake timeout", func(t *testing.T) {
		serverTLS, _, _ := tlsConfigs(t)
		start := time.Now()
		p, accepted, stop := hsDialRaw(t, Config{TLS: serverTLS, FirstByteTimeout: firstByte, HandshakeTimeout: handshake})
		defer stop()
		p.expectSilentClose(bound, "a client that never finished TLS")
		require.GreaterOrEqual(t, time.Since(start), handshake/2)
		requireNotAccepted(t, accepted, "a connection that never finished TLS")
	})

	t.Run("TLS client silent after the handshake is served as plain", func(t *testing.T) {
		serverTLS, clientTLS, _ := tlsConfigs(t)
		ln, accepted, stop := hsListener(t, Config{TLS: serverTLS, FirstByteTimeout: firstByte, HandshakeTimeout: handshake})
		defer stop()
		tc, err := tls.Dial("tcp", ln.Addr().String(), clientTLS)
		require.NoError(t, err)
		defer tc.Close()
		sc := acceptWithin(t, accepted, bound, "the silent TLS connection")
		defer sc.Close()
		_, isSession := sc.(*Conn)
		require.False(t, isSession)
		_, err = sc.Write([]byte("hello over TLS"))
		require.NoError(t, err)
		require.NoError(t, tc.SetReadDeadline(time.Now().Add(bound)))
		got := make([]byte, len("hello over TLS"))
		_, err = io.ReadFull(tc, got)
		require.NoError(t, err)
		require.Equal(t, "hello over TLS", string(got))
	})
}

// stallFlood opens n connections to addr that send the preface and then
// nothing, as a handshake flood does.
func stallFlood(t *testing.T, addr string, n int) []*rawPeer {
	t.Helper()
	peers := make([]*rawPeer, 0, n)
	for i := 0; i < n; i++ {
		p := dialRaw(t, addr)
		peers = append(peers, p)
		p.send(wire.Preface[:])
	}
	return peers
}

// TestHandshakeFloodIsBounded stalls 500 handshakes at once against a
// listener that allows 16. The listener must hold at most 16 of them (its
// goroutines do not grow with the flood), refuse each at its handshake
// timeout, serve an honest client once the flood is gone, and come back to
// its baseline.
func TestHandshakeFloodIsBounded(t *testing.T) {
	const flood = 500
	const slots = 16
	const handshake = 500 * time.Millisecond
	base := runtime.NumGoroutine()
	srv := listenEcho(t, &Config{
		Logger: testLogger(t), MaxHandshakes: slots, HandshakeTimeout: handshake, FirstByteTimeout: 200 * time.Millisecond,
	})
	ln := srv.ln
	addr := srv.Addr()
	idle := runtime.NumGoroutine()
	idleSet := goleak.IgnoreCurrent()

	peers := stallFlood(t, addr, flood)
	defer func() {
		for _, p := range peers {
			p.Close()
		}
	}()

	peakG, peakHS := 0, 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		peakG = max(peakG, runtime.NumGoroutine())
		ln.mu.Lock()
		peakHS = max(peakHS, len(ln.inFlight))
		ln.mu.Unlock()
	}
	t.Logf("goroutines: %d before, %d idle, %d at the peak of the flood; %d handshakes at once", base, idle, peakG, peakHS)
	require.LessOrEqual(t, peakHS, slots, "handshakes in progress stay within MaxHandshakes")
	require.Less(t, peakG, idle+2*slots+16, "goroutines do not grow with the flood")

	// Stalled handshakes were closed to make room, or refused when their
	// time ran out: either way the connection ends.
	for _, p := range peers[:slots] {
		f, err := p.readFrame(5 * time.Second)
		if err == nil {
			r, ok := f.(wire.Refused)
			require.True(t, ok, "got %v instead of REFUSED", f.Type())
			require.Equal(t, wire.CodeProtocol, r.Code)
			p.expectClosed(5 * time.Second)
		} else {
			require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "a stalled handshake was neither refused nor closed")
		}
	}

	// The flood goes away; the listener works through its queue at once.
	for _, p := range peers {
		p.Close()
	}
	start := time.Now()
	honest, err := (&Dialer{Logger: testLogger(t), HandshakeTimeout: 10 * time.Second}).Dial("tcp", addr)
	require.NoError(t, err)
	t.Logf("honest client served %v after the flood left", time.Since(start).Round(time.Millisecond))
	echoOnce(t, honest, "after the flood")
	closeHonest(t, honest)
	// Only the idle listener's goroutines are left.
	require.NoError(t, goleak.Find(idleSet), "goroutines back to the idle listener's")
}

// TestHandshakeFloodSparesHonestClients dials an honest client while 500
// stalled handshakes wait ahead of it. The listener takes connections in
// arrival order and only when one of its 16 handshake slots is free, so the
// honest client waits for 500/16 handshake timeouts (about 16 s here): a
// flood of cheap connections locks everyone out. A listener that sheds the
// oldest stalled handshake when it is full would serve it at once.
func TestHandshakeFloodSparesHonestClients(t *testing.T) {
	const flood = 500
	srv := listenEcho(t, &Config{
		Logger: testLogger(t), MaxHandshakes: 16, HandshakeTimeout: 500 * time.Millisecond,
	})
	addr := srv.Addr()
	peers := stallFlood(t, addr, flood)
	defer func() {
		for _, p := range peers {
			p.Close()
		}
	}()

	// Six handshake timeouts are a generous wait for an honest client.
	start := time.Now()
	honest, err := (&Dialer{Logger: testLogger(t), HandshakeTimeout: 3 * time.Second}).Dial("tcp", addr)
	require.NoError(t, err, "honest client dialed while the flood stalls (after %v)", time.Since(start))
	echoOnce(t, honest, "during the flood")
	closeHonest(t, honest)
}

// TestSessionLimitRefusesWithBusy fills a listener's session table: the
// next client is refused with ErrBusy (REFUSED code 5), and the sessions it
// holds are unharmed.
func TestSessionLimitRefusesWithBusy(t *testing.T) {
	srv := listenEcho(t, &Config{Logger: testLogger(t), MaxSessions: 2})
	d := &Dialer{Logger: testLogger(t)}
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := d.Dial("tcp", srv.Addr())
		require.NoError(t, err)
		held = append(held, c)
	}
	_, err := d.Dial("tcp", srv.Addr())
	require.ErrorIs(t, err, ErrBusy)
	var pe *PeerError
	require.ErrorAs(t, err, &pe)
	require.True(t, pe.Refused)
	require.Equal(t, CodeBusy, pe.Code, "the refusal carries its exported code")
	require.Equal(t, "server busy", pe.Code.String())

	p := dialRaw(t, srv.Addr())
	defer p.Close()
	kp, err := auth.NewKeyPair()
	require.NoError(t, err)
	h := rawHello()
	h.Key = kp.Pub
	p.send(wire.Preface[:], frame(h))
	p.expectRefused(wire.CodeBusy)

	for _, c := range held {
		echoOnce(t, c, "still here")
		closeHonest(t, c)
	}
}

// dialHostileServer dials, with a Dialer whose handshake timeout is
// timeout, a server that reads the preface and HELLO, writes answer (nothing
// if nil) and holds the connection open. It returns Dial's error.
func dialHostileServer(t *testing.T, answer []byte, timeout time.Duration) error {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer inner.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := inner.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		p := newRawPeer(t, nc)
		if _, err := io.ReadFull(p.br, make([]byte, len(wire.Preface))); err != nil {
			return
		}
		if _, err := p.readFrame(5 * time.Second); err != nil {
			return
		}
		if answer != nil {
			_, _ = nc.Write(answer)
		}
		// Hold the connection until the client gives up.
		_, _ = io.Copy(io.Discard, nc)
	}()
	start := time.Now()
	c, err := (&Dialer{Logger: testLogger(t), HandshakeTimeout: timeout}).Dial("tcp", inner.Addr().String())
	if c != nil {
		c.Close()
	}
	require.Error(t, err)
	t.Logf("dial failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	require.Less(t, time.Since(start), timeout+2*time.Second, "failed within the handshake timeout")
	inner.Close()
	<-served
	return err
}

// malformedAnswers break the frame format itself.
var malformedAnswers = []struct {
	name   string
	answer []byte
}{
	{"HTTP error page", []byte("HTTP/1.1 400 Bad Request\r\n\r\n")},
	{"DATA of 4 GiB", header(wire.TypeData, 0, 0xFFFFFFFF)},
	{"extension frame of 4 GiB", header(0x80, 0, 0xFFFFFFFF)},
}

// TestDialerAgainstHostileServers points a Dialer at servers that answer
// the HELLO with the wrong frame, unusable parameters or nothing at all.
// Dial must fail within its handshake timeout, with the error that says why,
// and no goroutine left behind. Garbage and oversized frames:
// TestDialerMalformedAnswerIsProtocolError.
func TestDialerAgainstHostileServers(t *testing.T) {
	welcome := func(edit func(w *wire.Welcome)) []byte {
		kp, err := auth.NewKeyPair()
		require.NoError(t, err)
		w := wire.Welcome{Version: wire.Version, Session: auth.SessionID(), Key: kp.Pub,
			Window: 1 << 20, Retention: 1 << 20, KeepAliveMillis: 1000, KeepAliveTimeoutMillis: 4000}
		edit(&w)
		return frame(w)
	}
	const timeout = 500 * time.Millisecond
	for _, tc := range []struct {
		name   string
		answer []byte
		want   error
	}{
		{"CHALLENGE instead of WELCOME", frame(wire.Challenge{}), ErrProtocol},
		{"WELCOME with a window of 10 bytes", welcome(func(w *wire.Welcome) { w.Window = 10 }), ErrProtocol},
		{"WELCOME with an all-zero key", welcome(func(w *wire.Welcome) { w.Key = [wire.KeyLen]byte{} }), ErrProtocol},
		{"WELCOME for version 2", welcome(func(w *wire.Welcome) { w.Version = 2 }), ErrVersion},
		{"REFUSED busy", frame(wire.Refused{Code: wire.CodeBusy, Reason: "full"}), ErrBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, dialHostileServer(t, tc.answer, timeout), tc.want)
		})
	}
	t.Run("silence", func(t *testing.T) {
		err := dialHostileServer(t, nil, timeout)
		require.True(t, errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded),
			"a deadline error: %v", err)
	})
}

// TestDialTimeoutIsNetTimeout: a Dial that runs out of time reports it the
// way net.Dial does, as a net.Error whose Timeout() is true, which callers
// (and net/http) test. When the connection's read deadline fires before the
// context's, the Dialer returns a *net.OpError around fmt.Errorf("reading
// WELCOME: %w", ...): OpError.Timeout() only asks its direct Err, which has
// no Timeout method, and says false, most of the time.
func TestDialTimeoutIsNetTimeout(t *testing.T) {
	for i := 0; i < 10; i++ {
		err := dialHostileServer(t, nil, 100*time.Millisecond)
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		require.True(t, ne.Timeout(), "Timeout() of %v", err)
	}
}

// TestDialerMalformedAnswerIsProtocolError: an answer that breaks the frame
// format is a protocol error, and says so to errors.Is(err, ErrProtocol) as
// the other protocol violations do. The Dialer wraps the internal
// wire.ErrMalformed instead, which callers cannot name; for the same reason a
// resume that gets such an answer is not taken as fatal
// (fatalResumeError) and is retried until the resume timeout.
func TestDialerMalformedAnswerIsProtocolError(t *testing.T) {
	for _, tc := range malformedAnswers {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, dialHostileServer(t, tc.answer, 500*time.Millisecond), ErrProtocol)
		})
	}
}
