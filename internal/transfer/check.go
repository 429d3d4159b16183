package transfer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// RequireEcho fails t unless res is a clean echo of the n bytes of the
// pattern seed, and serverDigest (what the server read) is their digest.
func RequireEcho(t testing.TB, res Result, n int64, seed uint64, serverDigest []byte) {
	t.Helper()
	require.NoError(t, res.WriteErr)
	require.NoError(t, res.ReadErr)
	want := Digest(n, seed)
	require.Equal(t, n, res.SentN)
	require.Equal(t, n, res.ReceivedN)
	require.Equal(t, want, res.Sent, "client sent the pattern")
	require.Equal(t, want, serverDigest, "server read exactly what the client sent")
	require.Equal(t, want, res.Received, "client read back exactly what the server echoed")
}
