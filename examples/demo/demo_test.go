package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemo runs a shorter demo: a drain, a kill and an overload, each of
// which must move the session, with the file's SHA-256 verified.
func TestDemo(t *testing.T) {
	moves, err := run(120<<20, 24, false)
	require.NoError(t, err)
	require.Len(t, moves, 3, "moves: %v", moves)
}
