package auth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

func TestKeysReuseAPairForAWhile(t *testing.T) {
	var k Keys
	start := time.Now()
	a, err := k.Get()
	require.NoError(t, err)
	b, err := k.Get()
	require.NoError(t, err)
	if time.Since(start) < KeyReuse { // else the machine stalled
		require.Same(t, a, b, "a pair younger than KeyReuse is handed out again")
	}
	time.Sleep(KeyReuse + 10*time.Millisecond)
	c, err := k.Get()
	require.NoError(t, err)
	require.NotSame(t, a, c, "a pair older than KeyReuse is replaced")
	require.NotEqual(t, a.Pub, c.Pub)
}

func TestReusedPairsStillGiveEachSessionItsOwnSecret(t *testing.T) {
	var client, server Keys
	c, err := client.Get()
	require.NoError(t, err)
	s, err := server.Get()
	require.NoError(t, err)
	seen := map[Secret]bool{}
	for range 20 {
		cs := agreedSecret(t, c, s, SessionID()) // from the cache or not
		require.False(t, seen[cs], "a secret repeated across sessions")
		seen[cs] = true
	}
	fresh, err := NewKeyPair()
	require.NoError(t, err)
	agreedSecret(t, fresh, s, SessionID()) // a cached pair agrees with an uncached one
}

func TestSharedCacheIsBoundedAndRefusesBadKeys(t *testing.T) {
	var k Keys
	s, err := k.Get()
	require.NoError(t, err)
	for range maxShared + 50 {
		p, err := NewKeyPair()
		require.NoError(t, err)
		_, err = s.DeriveSecret(p.Pub, SessionID(), p.Pub, s.Pub)
		require.NoError(t, err)
	}
	require.Len(t, s.shared, maxShared)
	var zero [wire.KeyLen]byte
	_, err = s.DeriveSecret(zero, SessionID(), zero, s.Pub)
	require.Error(t, err)
	_, err = s.DeriveSecret(zero, SessionID(), zero, s.Pub)
	require.Error(t, err, "a refused key is not remembered as good")
}

func TestKeysForgetAnUnusedPair(t *testing.T) {
	var k Keys
	_, err := k.Get()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.cur == nil
	}, 5*time.Second, 10*time.Millisecond, "the pair outlived its use")
}
