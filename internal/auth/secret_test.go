package auth

import (
	"crypto/hkdf"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

// TestSecretIsHKDFSHA256: the session secret is HKDF-SHA256 as crypto/hkdf
// computes it (spec.md, section 4), for varied shared values, ids and keys.
func TestSecretIsHKDFSHA256(t *testing.T) {
	for n := range 20 {
		shared := make([]byte, wire.KeyLen)
		var session [wire.SessionIDLen]byte
		var clientPub, serverPub [wire.KeyLen]byte
		for i := range shared {
			shared[i] = byte(i*13 + n)
			clientPub[i] = byte(i*5 + 3*n)
			serverPub[i] = byte(255 - i - n)
		}
		for i := range session {
			session[i] = byte(i*n + 1)
		}
		info := secretInfo + string(clientPub[:]) + string(serverPub[:])
		want, err := hkdf.Key(sha256.New, shared, session[:], info, len(Secret{}))
		require.NoError(t, err)
		got := secretOf(shared, session, clientPub, serverPub)
		require.Equal(t, want, got[:], "case %d", n)
	}
}

// TestDeriveSecretAllocatesNothing: with the shared value remembered, a
// new session's secret costs no allocation.
func TestDeriveSecretAllocatesNothing(t *testing.T) {
	var k Keys
	a, err := k.Get()
	require.NoError(t, err)
	b, err := NewKeyPair()
	require.NoError(t, err)
	id := SessionID()
	_, err = a.DeriveSecret(b.Pub, id, b.Pub, a.Pub)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = a.DeriveSecret(b.Pub, id, b.Pub, a.Pub)
	})
	require.Zero(t, allocs)
}

func BenchmarkDeriveSecret(b *testing.B) {
	var k Keys
	a, err := k.Get()
	require.NoError(b, err)
	peer, err := NewKeyPair()
	require.NoError(b, err)
	id := SessionID()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = a.DeriveSecret(peer.Pub, id, peer.Pub, a.Pub)
	}
}
