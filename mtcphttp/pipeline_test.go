package mtcphttp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp"
)

type connKey struct{}

// pipelineApp answers GET /?id=I with "answer I from <member>". On request
// 2 it waits until net/http has read everything the client sent (the
// pipelined request 3 is then buffered, unserved) and asks the session to
// move to target.
type pipelineApp struct {
	t      testing.TB
	target string
	total  int64 // the bytes the client sends up to request 3
	moved  chan error
	mu     sync.Mutex
	calls  map[string]int
}

func (a *pipelineApp) handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		a.mu.Lock()
		a.calls[id]++
		a.mu.Unlock()
		if id == "2" {
			sc := Session(r.Context().Value(connKey{}).(net.Conn))
			for deadline := time.Now().Add(10 * time.Second); sc.Status().Consumed < uint64(a.total); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					a.t.Errorf("net/http did not read the pipelined request ahead (%d of %d bytes)", sc.Status().Consumed, a.total)
					break
				}
			}
			go func() { a.moved <- sc.Migrate(context.Background(), a.target) }()
			for !sc.Status().Settling {
				time.Sleep(time.Millisecond)
			}
		}
		fmt.Fprintf(w, "answer %s from %s\n", id, name)
	})
}

// TestPipelinedRequestsAreNotSkipped: a client writes two requests back to
// back; net/http reads the second while it serves the first, so the
// connection going idle after the first is no request boundary. The member
// serving it is asked to move it meanwhile. No checkpoint may claim the
// second request before it is served: the move waits until it is, and its
// answer comes whole; the next request is answered by the other member.
// A checkpoint at every idle point would let the move restore the session
// after the second request: the client would never get its answer.
func TestPipelinedRequestsAreNotSkipped(t *testing.T) {
	app := &pipelineApp{t: t, moved: make(chan error, 1), calls: map[string]int{}}
	idle := make(chan string, 16) // the member whose connection went idle
	p := newTestPool(t, app.handler, nil)
	p.hook = func(name string, c net.Conn, s http.ConnState) {
		if s == http.StateIdle {
			idle <- name
		}
	}
	p.server = func(hs *http.Server) {
		hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		}
	}
	m0 := p.add()
	app.target = p.add().ln.Addr().String()

	c, err := (&mtcp.Dialer{}).DialContext(context.Background(), "tcp", m0.ln.Addr().String())
	require.NoError(t, err)
	defer p.closeClient(c)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	br := bufio.NewReader(c)
	req := func(id int) string { return fmt.Sprintf("GET /?id=%d HTTP/1.1\r\nHost: pool\r\n\r\n", id) }
	answer := func(id int) string {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err, "answer %d", id)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err, "answer %d", id)
		resp.Body.Close()
		return string(b)
	}

	first := req(1)
	_, err = io.WriteString(c, first)
	require.NoError(t, err)
	require.Equal(t, "answer 1 from m0\n", answer(1))
	require.Equal(t, "m0", <-idle, "the connection is idle, checkpointed")

	pipelined := req(2) + req(3)
	app.total = int64(len(first) + len(pipelined))
	_, err = io.WriteString(c, pipelined) // one write: both requests at once
	require.NoError(t, err)
	require.Equal(t, "answer 2 from m0\n", answer(2))
	require.Equal(t, "answer 3 from m0\n", answer(3), "the request read ahead is answered")
	require.NoError(t, <-app.moved)
	_, err = io.WriteString(c, req(4))
	require.NoError(t, err)
	require.Equal(t, "answer 4 from m1\n", answer(4), "the session moved after the third answer")
	app.mu.Lock()
	defer app.mu.Unlock()
	require.Equal(t, map[string]int{"1": 1, "2": 1, "3": 1, "4": 1}, app.calls, "each request ran once")
}
