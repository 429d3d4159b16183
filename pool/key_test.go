package pool

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGossipKeyIsDerived(t *testing.T) {
	poolKey := []byte("0123456789abcdef0123456789abcdef")
	k1, err := gossipKey(poolKey)
	require.NoError(t, err)
	require.Len(t, k1, 32)
	require.NotEqual(t, poolKey, k1)
	k2, err := gossipKey(poolKey)
	require.NoError(t, err)
	require.Equal(t, k1, k2)
	k3, err := gossipKey([]byte("0123456789abcdef0123456789abcdeF"))
	require.NoError(t, err)
	require.NotEqual(t, k1, k3)
	_, err = gossipKey(make([]byte, MinKeyLen-1))
	require.ErrorIs(t, err, ErrNoKey)
}
