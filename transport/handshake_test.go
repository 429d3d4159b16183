package transport

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testConfig returns a filled-in Config.
func testConfig(t *testing.T, name string, key []byte, maxMessage int) *Config {
	t.Helper()
	cfg, err := Config{NodeName: name, Key: key, MaxMessage: maxMessage}.withDefaults()
	require.NoError(t, err)
	return &cfg
}

type hsOutcome struct {
	res *handshakeResult
	err error
}

// handshakePair runs both sides of the handshake over the two ends of a
// pipe, closing each end when its side fails.
func handshakePair(cc, sc net.Conn, ccfg, scfg *Config) (client, server hsOutcome) {
	done := make(chan hsOutcome, 1)
	go func() {
		r, err := serverHandshake(sc, bufio.NewReader(sc), scfg, authKey(scfg.Key))
		if err != nil {
			_ = sc.Close()
		}
		done <- hsOutcome{r, err}
	}()
	r, err := clientHandshake(cc, bufio.NewReader(cc), ccfg, authKey(ccfg.Key))
	if err != nil {
		_ = cc.Close()
	}
	return hsOutcome{r, err}, <-done
}

func TestHandshake(t *testing.T) {
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	c, s := handshakePair(cc, sc, testConfig(t, "alpha", testKey, 4096), testConfig(t, "beta", testKey, 2048))
	require.NoError(t, c.err)
	require.NoError(t, s.err)
	require.Equal(t, "beta", c.res.peerName)
	require.Equal(t, "alpha", s.res.peerName)
	require.Equal(t, 2048, c.res.sec.maxSend)
	require.Equal(t, 4096, c.res.sec.maxRecv)
	require.Equal(t, 2048, s.res.sec.maxSend)
	require.Equal(t, 2048, s.res.sec.maxRecv)

	// Frames flow both ways.
	for _, dir := range []struct{ from, to *secureConn }{{c.res.sec, s.res.sec}, {s.res.sec, c.res.sec}} {
		for _, msg := range [][]byte{{}, []byte("hello"), bytes.Repeat([]byte{7}, 2048)} {
			errc := make(chan error, 1)
			go func() { _, err := dir.from.writeFrame(msg); errc <- err }()
			got, err := dir.to.readFrame()
			require.NoError(t, err)
			require.NoError(t, <-errc)
			require.Equal(t, msg, got)
		}
	}
}

func TestHandshakeWrongKey(t *testing.T) {
	// Either side with the other key: the client sees it first.
	for _, keys := range [][2][]byte{{testKey, otherKey}, {otherKey, testKey}} {
		cc, sc := net.Pipe()
		c, s := handshakePair(cc, sc, testConfig(t, "c", keys[0], 0), testConfig(t, "s", keys[1], 0))
		require.ErrorIs(t, c.err, ErrAuth)
		require.Error(t, s.err, "the server never gets a proof")
		_ = sc.Close()
	}
}

// forgingClient plays a client that does not hold the server's key: it
// proves with key, and sends pub as its X25519 key. It returns the
// server's outcome.
func forgingClient(t *testing.T, key []byte, pub [pubLen]byte) error {
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	done := make(chan error, 1)
	go func() {
		_, err := serverHandshake(sc, bufio.NewReader(sc), testConfig(t, "s", testKey, 0), authKey(testKey))
		_ = sc.Close()
		done <- err
	}()
	h, _, err := newHello(testConfig(t, "forger", key, 0), nil)
	require.NoError(t, err)
	h.Pub = pub
	transcript := appendHello(nil, h)
	_, err = cc.Write(transcript)
	require.NoError(t, err)
	_, shRaw, err := readHello(cc)
	require.NoError(t, err)
	_, err = readProof(cc)
	require.NoError(t, err)
	transcript = append(transcript, shRaw...)
	p := proof(authKey(key), labelClient, transcript)
	_, _ = cc.Write(p[:])
	return <-done
}

func TestHandshakeServerChecksClient(t *testing.T) {
	pub := [pubLen]byte{9} // the X25519 base point: a valid key
	require.ErrorIs(t, forgingClient(t, otherKey, pub), ErrAuth)
	// With the right key but a low-order public key, the exchange is refused.
	require.ErrorIs(t, forgingClient(t, testKey, [pubLen]byte{}), ErrProtocol)
}

// recorder keeps what is written through it.
type recorder struct {
	net.Conn
	buf bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.buf.Write(p)
	return r.Conn.Write(p)
}

// TestHandshakeReplay: the messages of a recorded handshake are useless in
// a later one, on either side.
func TestHandshakeReplay(t *testing.T) {
	ccfg, scfg := testConfig(t, "c", testKey, 0), testConfig(t, "s", testKey, 0)
	cc, sc := net.Pipe()
	crec, srec := &recorder{Conn: cc}, &recorder{Conn: sc}
	c, s := handshakePair(crec, srec, ccfg, scfg)
	require.NoError(t, c.err)
	require.NoError(t, s.err)
	_ = cc.Close()
	_ = sc.Close()
	clientSent, serverSent := crec.buf.Bytes(), srec.buf.Bytes()

	// Replaying the client's bytes to a fresh server.
	cc, sc = net.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := serverHandshake(sc, bufio.NewReader(sc), scfg, authKey(testKey))
		_ = sc.Close()
		done <- err
	}()
	go func() { _, _ = io.Copy(io.Discard, cc) }()
	_, _ = cc.Write(clientSent)
	require.ErrorIs(t, <-done, ErrAuth)
	_ = cc.Close()

	// Replaying the server's bytes to a fresh client.
	cc, sc = net.Pipe()
	go func() {
		_, _ = io.ReadFull(sc, make([]byte, helloFixed+1)) // the client's hello ("c")
		_, _ = sc.Write(serverSent)
		_ = sc.Close()
	}()
	_, err := clientHandshake(cc, bufio.NewReader(cc), ccfg, authKey(testKey))
	require.ErrorIs(t, err, ErrAuth)
	_ = cc.Close()
}

// TestHandshakeTamper: a man in the middle who changes any byte of either
// hello is caught.
func TestHandshakeTamper(t *testing.T) {
	ccfg, scfg := testConfig(t, "client", testKey, 0), testConfig(t, "server", testKey, 0)
	for _, tc := range []struct {
		name      string
		toServer  bool
		offset    int
		wantError error
	}{
		{"client nonce", true, len(helloMagic) + 1, ErrAuth},
		{"client key", true, len(helloMagic) + 1 + nonceLen, ErrAuth},
		{"client max", true, helloFixed - 3, ErrAuth},
		{"client name", true, helloFixed, ErrAuth},
		{"server nonce", false, len(helloMagic) + 1, ErrAuth},
		{"server key", false, len(helloMagic) + 1 + nonceLen + 3, ErrAuth},
		{"server max", false, helloFixed - 2, ErrAuth},
		{"server name", false, helloFixed + 2, ErrAuth},
		{"server proof", false, helloFixed + len("server") + 5, ErrAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, m1 := net.Pipe()
			m2, sc := net.Pipe()
			go relay(m1, m2, tc.toServer, tc.offset)
			go relay(m2, m1, !tc.toServer, tc.offset)
			c, s := handshakePair(cc, sc, ccfg, scfg)
			require.ErrorIs(t, c.err, tc.wantError)
			require.Error(t, s.err)
			for _, x := range []net.Conn{cc, m1, m2, sc} {
				_ = x.Close()
			}
		})
	}
}

// relay copies from src to dst, flipping the byte at offset of the stream
// if flip is set.
func relay(src, dst net.Conn, flip bool, offset int) {
	defer dst.Close()
	buf := make([]byte, 512)
	pos := 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if flip && offset >= pos && offset < pos+n {
				buf[offset-pos] ^= 0x01
			}
			pos += n
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestConnectionKeysDiffer: a frame of one connection does not open on another.
func TestConnectionKeysDiffer(t *testing.T) {
	ccfg, scfg := testConfig(t, "c", testKey, 0), testConfig(t, "s", testKey, 0)
	pair := func() (*recorder, *handshakeResult, *handshakeResult) {
		cc, sc := net.Pipe()
		t.Cleanup(func() { _ = cc.Close(); _ = sc.Close() })
		rec := &recorder{Conn: cc}
		c, s := handshakePair(rec, sc, ccfg, scfg)
		require.NoError(t, c.err)
		require.NoError(t, s.err)
		rec.buf.Reset()
		return rec, c.res, s.res
	}
	rec1, c1, s1 := pair()
	go func() { _, _ = c1.sec.writeFrame([]byte("move session 42")) }()
	got, err := s1.sec.readFrame()
	require.NoError(t, err)
	require.Equal(t, "move session 42", string(got))

	_, _, s2 := pair()
	s2.sec.r = bytes.NewReader(rec1.buf.Bytes())
	_, err = s2.sec.readFrame()
	require.ErrorIs(t, err, ErrProtocol)
}

// TestHelloFloodKeyGenerations: hellos from a peer without the key cost the
// server at most one X25519 key generation per keyReuse, and the server
// lets its key go keyReuse after making it.
func TestHelloFloodKeyGenerations(t *testing.T) {
	s, _ := startServer(t, nil)
	addr := s.Addr().String()
	const n = 200
	pubs := map[[pubLen]byte]bool{}
	start := time.Now()
	for range n {
		c := rawDial(t, addr)
		_, err := c.Write(testHello(MinMessage))
		require.NoError(t, err)
		h, _, err := readHello(bufio.NewReader(c))
		require.NoError(t, err)
		pubs[h.Pub] = true
		_ = c.Close()
	}
	elapsed := time.Since(start)
	t.Logf("%d hellos in %v: %d server keys", n, elapsed, len(pubs))
	require.LessOrEqual(t, len(pubs), 1+int(elapsed/keyReuse), "at most one key per keyReuse")

	require.Eventually(t, func() bool {
		s.keys.mu.Lock()
		defer s.keys.mu.Unlock()
		return s.keys.key == nil
	}, time.Second, 5*time.Millisecond, "the key is let go")
}
