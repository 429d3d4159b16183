package mtcp

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/auth"
	"github.com/migratory/mtcp/internal/wire"
)

// junkProof is a PROOF whose MAC no secret produced.
func junkProof() []byte {
	var mac [wire.MACLen]byte
	copy(mac[:], "whoever knows an id knows no key")
	return frame(wire.Proof{MAC: mac})
}

// TestRedirectNeedsProof: a session that moved from m0 to m1 leaves m0 a
// redirect for its client. Knowing the session's id must not be enough to
// learn where the session went: m0, and a member that asks m0 on a
// client's behalf, answer a resume with a CHALLENGE first, and a proof that
// does not check out gets REFUSED (bad proof), with no redirect.
func TestRedirectNeedsProof(t *testing.T) {
	tp := startAppPool(t, 3, nil, appOptions{})
	defer tp.close()
	m1 := tp.member("m1")
	mc := tp.dial(t, nil, "m0")
	c := net.Conn(mc)
	require.NoError(t, mc.Migrate(ctxTimeout(t, 10*time.Second), m1.Addr().String()))
	require.Equal(t, "m1", mc.MemberName())

	for _, at := range []string{"m0", "m2"} {
		t.Run("resume at "+at, func(t *testing.T) {
			p := dialRaw(t, tp.addr(at))
			defer p.Close()
			h := rawHello()
			h.Resume, h.Session, h.Nonce, h.Epoch, h.Origin = true, mc.id, auth.Nonce(), 1, "m0"
			h.Attempt = rawAttempt(h.Nonce)
			p.send(wire.Preface[:], frame(h))
			f, err := p.readFrame(5 * time.Second)
			require.NoError(t, err)
			if r, ok := f.(wire.Refused); ok {
				t.Fatalf("answered without a challenge: %v %q, redirect %s %s", r.Code, r.Reason, r.RedirectName, r.RedirectAddr)
			}
			require.IsType(t, wire.Challenge{}, f)
			p.send(junkProof())
			r := p.expectRefused(wire.CodeBadProof)
			require.Empty(t, r.RedirectName)
			require.Empty(t, r.RedirectAddr)
		})
	}
	echoOnce(t, c, "unharmed")
	require.NoError(t, c.Close())
	tp.waitEnded(t, c)
}

// TestTakeoverRespectsMaxSessions: a member that holds MaxSessions sessions
// takes no more, whether they are new or moving in. A move to it is refused
// as busy before the session leaves its member, and the session goes on
// there.
func TestTakeoverRespectsMaxSessions(t *testing.T) {
	tp := startAppPool(t, 2, func(c *Config) { c.MaxSessions = 1 }, appOptions{})
	defer tp.close()
	m1 := tp.member("m1")
	d := &Dialer{Logger: testLogger(t)}
	full, err := d.Dial("tcp", tp.addr("m1"))
	require.NoError(t, err)
	c, err := d.Dial("tcp", tp.addr("m0"))
	require.NoError(t, err)
	waitMembers(t, c, 2)
	echoOnce(t, c, "before")

	err = c.(*Conn).Migrate(ctxTimeout(t, 10*time.Second), m1.Addr().String())
	require.Error(t, err, "a move into a full member")
	require.ErrorIs(t, err, ErrBusy)
	t.Logf("move refused: %v", err)
	require.Equal(t, 1, m1.Sessions(), "m1 holds no more than MaxSessions")
	echoOnce(t, c, "after the refused move")
	require.Equal(t, "m0", c.(*Conn).MemberName())
	echoOnce(t, full, "the full member's session")
	for _, x := range []net.Conn{c, full} {
		require.NoError(t, x.Close())
		tp.waitEnded(t, x)
	}
}

// epochTamperConn raises the epoch of the resume HELLO written on it, as a
// man on the path could.
type epochTamperConn struct {
	net.Conn
	done bool
}

func (c *epochTamperConn) Write(p []byte) (int, error) {
	// preface, frame header, the HELLO's fixed part, session, nonce: then
	// the epoch, big-endian.
	const epochEnd = 8 + wire.HeaderLen + 16 + wire.SessionIDLen + wire.NonceLen + 8
	if !c.done && len(p) >= epochEnd && wire.Type(p[8]) == wire.TypeHello {
		c.done = true
		q := append([]byte(nil), p...)
		q[epochEnd-1]++
		return c.Conn.Write(q)
	}
	return c.Conn.Write(p)
}

// TestResumeMACCoversEpochAndOrigin: the client's proof covers the epoch
// and origin its HELLO names. A resume HELLO whose epoch was raised on the
// way must not convince the session's member that another member took the
// session over (which would end the session there).
func TestResumeMACCoversEpochAndOrigin(t *testing.T) {
	tp := startAppPool(t, 1, nil, appOptions{})
	defer tp.close()
	m0 := tp.member("m0")
	px := newProxy(t, m0.Addr().String())
	defer px.Close()
	var dials atomic.Int32
	d := &Dialer{Logger: testLogger(t), ResumeTimeout: 5 * time.Second,
		DialFunc: func(ctx context.Context, network, address string) (net.Conn, error) {
			var nd net.Dialer
			nc, err := nd.DialContext(ctx, network, address)
			if err != nil || dials.Add(1) != 2 {
				return nc, err
			}
			return &epochTamperConn{Conn: nc}, nil
		}}
	c, err := d.Dial("tcp", px.Addr())
	require.NoError(t, err)
	id := c.(*Conn).id
	echoOnce(t, c, "before")
	require.Equal(t, 1, px.ResetAll())
	require.Eventually(t, func() bool { return dials.Load() >= 2 }, 5*time.Second, 5*time.Millisecond)
	// The tampered resume was answered (the client gives up: a proof that
	// does not check out is no network failure).
	waitSessionEnd(t, c)
	t.Logf("client: %v", c.(*Conn).Err())
	sc := m0.session(id)
	require.NotNil(t, sc, "the session is still held by its member")
	require.NoError(t, sc.Err(), "the session was not ended by a forged epoch")
}
