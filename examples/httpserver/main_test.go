package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHTTPServer runs a shorter example: two deploys under 600 requests,
// every answer checked, one connection.
func TestHTTPServer(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(&out, 600, 2, false))
	t.Log(out.String())
	require.Equal(t, 2, strings.Count(out.String(), "its connection moved"), out.String())
}
