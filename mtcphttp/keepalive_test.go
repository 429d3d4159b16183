package mtcphttp

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestKeepAliveThroughDrainsAndCrashes sends sequential requests over one
// keep-alive connection while, every so many requests, the member serving
// it is drained (Shutdown) or crashed, and replaced by a new one; each
// event starts as a request goes out, so it lands in the middle of its
// answer. Every answer is checked by SHA-256; the client dials once and
// sees no error. By default 1,000 requests with an event every 250;
// MTCP_SCALE=1 sends 10,000 with one every 500.
func TestKeepAliveThroughDrainsAndCrashes(t *testing.T) {
	requests, every := 1000, 250
	if os.Getenv("MTCP_SCALE") != "" {
		requests, every = 10_000, 500
	}
	h := newBodyHandler()
	p := startPool(t, 3, func(string) http.Handler { return h }, nil)
	d := &dialer{}
	tr := &http.Transport{DialContext: d.DialContext, MaxConnsPerHost: 1}
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	base := "http://" + p.member("m0").ln.Addr().String()

	var (
		pending         chan error // the event under way
		drains, crashes int
	)
	start := time.Now()
	for id := 1; id <= requests; id++ {
		if id%every == every/2 {
			if pending != nil {
				require.NoError(t, <-pending)
			}
			serving := p.member(d.session().MemberName())
			pending = make(chan error, 1)
			crash := (drains+crashes)%2 == 1
			if crash {
				crashes++
			} else {
				drains++
			}
			go func(done chan<- error) {
				if crash {
					p.crash(serving)
				} else if err := p.shutdown(serving, 30*time.Second); err != nil {
					done <- fmt.Errorf("draining %s: %w", serving.name, err)
					return
				}
				p.add()
				done <- nil
			}(pending)
		}
		n := int64(1 + (id*7919)%(48<<10))
		_, err := fetch(client, base, uint64(id), n)
		require.NoError(t, err, "request %d (served by %s)", id, d.session().MemberName())
	}
	if pending != nil {
		require.NoError(t, <-pending)
	}
	require.EqualValues(t, 1, d.dials.Load(), "one connection throughout")
	again := 0
	for id := 1; id <= requests; id++ {
		k := h.invocations(uint64(id))
		require.GreaterOrEqual(t, k, 1, "request %d ran", id)
		again += k - 1
	}
	t.Logf("%d requests in %v through %d drains and %d crashes; requests run again after a crash: %d",
		requests, time.Since(start).Round(time.Millisecond), drains, crashes, again)
	p.closeClient(d.session())
	tr.CloseIdleConnections()
}
