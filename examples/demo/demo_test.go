package main

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestDemo runs a shorter demo: a drain, a kill and an overload, each of
// which must move the session, with the file's SHA-256 verified.
func TestDemo(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	moves, err := run(120<<20, 24, false)
	require.NoError(t, err)
	require.Len(t, moves, 3, "moves: %v", moves)
}
