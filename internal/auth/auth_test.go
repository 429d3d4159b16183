package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

// agreedSecret derives the secret of session id at the client c and at
// the server s, as the handshake does, and fails the test unless both
// ends agree on it.
func agreedSecret(t *testing.T, c, s *KeyPair, id [wire.SessionIDLen]byte) Secret {
	t.Helper()
	cs, err := c.DeriveSecret(s.Pub, id, c.Pub, s.Pub)
	require.NoError(t, err)
	ss, err := s.DeriveSecret(c.Pub, id, c.Pub, s.Pub)
	require.NoError(t, err)
	require.Equal(t, cs, ss, "both ends agree")
	return cs
}

func TestBothSidesDeriveTheSameSecret(t *testing.T) {
	c, err := NewKeyPair()
	require.NoError(t, err)
	s, err := NewKeyPair()
	require.NoError(t, err)
	cs := agreedSecret(t, c, s, SessionID())
	other, err := s.DeriveSecret(c.Pub, SessionID(), c.Pub, s.Pub)
	require.NoError(t, err)
	require.NotEqual(t, cs, other, "the session id is bound into the secret")
}

func TestProofsBindEverything(t *testing.T) {
	var sec Secret
	sec[0] = 1
	r := Resume{Session: SessionID(), ClientNonce: Nonce(), ServerNonce: Nonce(), Epoch: 3, Origin: "m0"}
	pos := wire.Positions{Received: 1, Limit: 2, Release: 3, Written: 4}
	m := r.ClientMAC(sec, pos.AppendTo(nil))
	require.True(t, Equal(m, r.ClientMAC(sec, pos.AppendTo(nil))))
	require.False(t, Equal(m, r.ServerMAC(sec, pos.AppendTo(nil))), "roles differ")
	for name, edit := range map[string]func(*Resume){
		"a fresh server nonce": func(r *Resume) { r.ServerNonce = Nonce() },
		"a fresh client nonce": func(r *Resume) { r.ClientNonce = Nonce() },
		"another session":      func(r *Resume) { r.Session = SessionID() },
		"another epoch":        func(r *Resume) { r.Epoch++ },
		"another origin":       func(r *Resume) { r.Origin = "m1" },
		"no origin":            func(r *Resume) { r.Origin = "" },
	} {
		o := r
		edit(&o)
		require.False(t, Equal(m, o.ClientMAC(sec, pos.AppendTo(nil))), "%s changes the proof", name)
	}
	pos.Received++
	require.False(t, Equal(m, r.ClientMAC(sec, pos.AppendTo(nil))), "positions are covered")
	var other Secret
	pos.Received--
	require.False(t, Equal(m, r.ClientMAC(other, pos.AppendTo(nil))))
}

func TestBadPeerKey(t *testing.T) {
	kp, err := NewKeyPair()
	require.NoError(t, err)
	var zero [wire.KeyLen]byte
	_, err = kp.DeriveSecret(zero, SessionID(), zero, kp.Pub)
	require.Error(t, err, "the all-zero point gives a zero shared secret and is refused")
}

// TestMACIsHMACSHA256: the resume MACs are HMAC-SHA256 as crypto/hmac
// computes it, over the fields a resume binds, for messages that fit the
// stack buffer and longer ones.
func TestMACIsHMACSHA256(t *testing.T) {
	for _, n := range []int{0, 1, 100, macStack, 4 * macStack} {
		var secret Secret
		for i := range secret {
			secret[i] = byte(i*7 + n)
		}
		r := Resume{Epoch: 3, Attempt: uint64(n), Origin: "member-" + strings.Repeat("x", n%300)}
		r.Session[0], r.ClientNonce[1], r.ServerNonce[2] = 1, 2, 3
		fields := bytes.Repeat([]byte{byte(n)}, n)
		for _, label := range []string{clientLabel, serverLabel} {
			h := hmac.New(sha256.New, secret[:])
			h.Write([]byte(label))
			h.Write(r.Session[:])
			h.Write(r.ClientNonce[:])
			h.Write(r.ServerNonce[:])
			var num [16]byte
			binary.BigEndian.PutUint64(num[:], r.Epoch)
			binary.BigEndian.PutUint64(num[8:], r.Attempt)
			h.Write(num[:])
			origin := r.Origin[:min(len(r.Origin), wire.MaxNameLen)]
			h.Write([]byte{byte(len(origin))})
			h.Write([]byte(origin))
			h.Write(fields)
			require.Equal(t, h.Sum(nil), func() []byte { m := r.mac(secret, label, fields); return m[:] }(), "%d bytes, %s", n, label)
		}
	}
}

func BenchmarkResumeMAC(b *testing.B) {
	var secret Secret
	r := Resume{Epoch: 3, Attempt: 1, Origin: "m0"}
	fields := make([]byte, 40)
	b.ReportAllocs()
	for b.Loop() {
		_ = r.ClientMAC(secret, fields)
	}
}
