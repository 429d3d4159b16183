package mtcphttp

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// namedHandler adds the member's name to bodyHandler's answers.
func namedHandler(h *bodyHandler) func(name string) http.Handler {
	return func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Member", name)
			h.ServeHTTP(w, r)
		})
	}
}

// TestShutdownMovesConnections: Shutdown of the member serving a keep-alive
// connection moves it to another member instead of closing it; Serve
// returns http.ErrServerClosed.
func TestShutdownMovesConnections(t *testing.T) {
	h := newBodyHandler()
	p := startPool(t, 3, namedHandler(h), nil)
	d := &dialer{}
	tr := &http.Transport{DialContext: d.DialContext, MaxConnsPerHost: 1}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	base := "http://" + p.member("m0").ln.Addr().String()

	resp, err := fetch(client, base, 1, 100<<10)
	require.NoError(t, err)
	require.Equal(t, "m0", resp.Header.Get("X-Member"))
	require.NoError(t, p.shutdown(p.member("m0"), 20*time.Second))
	require.ErrorIs(t, <-p.member("m0").served, http.ErrServerClosed)
	for id := uint64(2); id < 5; id++ {
		resp, err = fetch(client, base, id, 100<<10)
		require.NoError(t, err)
		require.NotEqual(t, "m0", resp.Header.Get("X-Member"), "served elsewhere after the shutdown")
	}
	require.EqualValues(t, 1, d.dials.Load(), "the one connection moved")
	for id := uint64(1); id < 5; id++ {
		require.Equal(t, 1, h.invocations(id), "request %d ran once", id)
	}
	p.closeClient(d.session())
	tr.CloseIdleConnections()
}
