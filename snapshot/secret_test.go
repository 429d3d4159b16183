package snapshot

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSecretPrintsRedacted(t *testing.T) {
	r := sample()
	for i := range r.Secret {
		r.Secret[i] = 0xab
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		out := fmt.Sprintf(verb, r)
		require.NotContains(t, strings.ToLower(out), "abab", "%s of a record shows its secret: %s", verb, out)
		require.NotContains(t, out, "171 171", "%s of a record shows its secret: %s", verb, out)
		require.Contains(t, out, "redacted", verb)
	}
	// The encoding still carries it.
	b, err := r.Marshal()
	require.NoError(t, err)
	require.True(t, bytes.Contains(b, bytes.Repeat([]byte{0xab}, 32)))
	got, err := Unmarshal(b, 0)
	require.NoError(t, err)
	require.Equal(t, r.Secret, got.Secret)
}
