package auth

import (
	"testing"

	"github.com/migratory/mtcp/internal/wire"
	"github.com/stretchr/testify/require"
)

func TestBothSidesDeriveTheSameSecret(t *testing.T) {
	c, err := NewKeyPair()
	require.NoError(t, err)
	s, err := NewKeyPair()
	require.NoError(t, err)
	id := SessionID()
	cs, err := c.DeriveSecret(s.Pub, id, c.Pub, s.Pub)
	require.NoError(t, err)
	ss, err := s.DeriveSecret(c.Pub, id, c.Pub, s.Pub)
	require.NoError(t, err)
	require.Equal(t, cs, ss)
	other, err := s.DeriveSecret(c.Pub, SessionID(), c.Pub, s.Pub)
	require.NoError(t, err)
	require.NotEqual(t, cs, other, "the session id is bound into the secret")
}

func TestProofsBindEverything(t *testing.T) {
	var sec Secret
	sec[0] = 1
	id := SessionID()
	cn, sn := Nonce(), Nonce()
	pos := wire.Positions{Received: 1, Limit: 2, Release: 3, Written: 4}
	m := ClientMAC(sec, id, cn, sn, pos.AppendTo(nil))
	require.True(t, Equal(m, ClientMAC(sec, id, cn, sn, pos.AppendTo(nil))))
	require.False(t, Equal(m, ServerMAC(sec, id, cn, sn, pos.AppendTo(nil))), "roles differ")
	require.False(t, Equal(m, ClientMAC(sec, id, cn, Nonce(), pos.AppendTo(nil))), "a fresh nonce changes the proof")
	pos.Received++
	require.False(t, Equal(m, ClientMAC(sec, id, cn, sn, pos.AppendTo(nil))), "positions are covered")
	var other Secret
	pos.Received--
	require.False(t, Equal(m, ClientMAC(other, id, cn, sn, pos.AppendTo(nil))))
}

func TestBadPeerKey(t *testing.T) {
	kp, err := NewKeyPair()
	require.NoError(t, err)
	var zero [wire.KeyLen]byte
	_, err = kp.DeriveSecret(zero, SessionID(), zero, kp.Pub)
	require.Error(t, err, "the all-zero point gives a zero shared secret and is refused")
}
