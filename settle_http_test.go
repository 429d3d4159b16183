package mtcp

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/testenv"
)

// httpPool is an in-process pool on loopback whose members serve HTTP with
// a handler that names its member, checkpointing nil state when their
// connections go idle between requests.
type httpPool struct {
	t       testing.TB
	members []*Listener
	servers []*http.Server
	served  sync.WaitGroup

	mu      sync.Mutex
	calls   map[string]int // request id -> handler invocations
	release map[string]chan struct{}
	idle    chan struct{} // a connection went idle (after its checkpoint)
}

// startHTTPPool starts n members (m0, m1...) serving:
//
//	GET /r?id=I&n=N  N pattern bytes (seed I) with header X-Member; if
//	                 the test holds I (hold), half of them, then the rest
//	                 once it lets go.
func startHTTPPool(t testing.TB, n int, tweak func(*Config)) *httpPool {
	p := &httpPool{t: t, calls: map[string]int{}, release: map[string]chan struct{}{}, idle: make(chan struct{}, 1<<16)}
	t.Cleanup(p.close)
	startMembers(t, n, func(cfg *Config) {
		cfg.Replicas = 1
		if tweak != nil {
			tweak(cfg)
		}
	}, p.serve)
	return p
}

// serve serves HTTP on member ln.
func (p *httpPool) serve(ln *Listener) {
	srv := &http.Server{
		Handler:  p.handler(ln.NodeName()),
		ErrorLog: log.New(testenv.Writer(p.t), "http: ", 0),
		ConnState: func(c net.Conn, s http.ConnState) {
			if mc, ok := c.(*Conn); ok && s == http.StateIdle {
				// The clients of these tests send their next request
				// only once the connection is idle (p.idle), so that no
				// byte of it was read ahead.
				_ = mc.Checkpoint(nil)
				p.idle <- struct{}{}
			}
		},
	}
	p.members = append(p.members, ln)
	p.servers = append(p.servers, srv)
	p.served.Add(1)
	go func() {
		defer p.served.Done()
		_ = srv.Serve(ln)
	}()
}

func (p *httpPool) handler(member string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		seed, err2 := strconv.ParseUint(id, 10, 64)
		if err != nil || err2 != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.calls[id]++
		hold := p.release[id]
		p.mu.Unlock()
		w.Header().Set("X-Member", member)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		body := newPattern(n, seed)
		if hold != nil {
			_, _ = io.CopyN(w, body, n/2)
			w.(http.Flusher).Flush()
			<-hold
		}
		_, _ = io.Copy(w, body)
	})
}

// hold makes request id stop halfway through its response until the
// returned function is called.
func (p *httpPool) hold(id int) (release func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	p.release[strconv.Itoa(id)] = ch
	p.mu.Unlock()
	return func() { close(ch) }
}

func (p *httpPool) invocations(id int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[strconv.Itoa(id)]
}

func (p *httpPool) member(name string) *Listener {
	for _, ln := range p.members {
		if ln.NodeName() == name {
			return ln
		}
	}
	p.t.Fatalf("no member %s", name)
	return nil
}

// serverEnd returns the server end of the one session a member holds.
func (p *httpPool) serverEnd(name string) *Conn {
	list := p.member(name).sessionList()
	require.Len(p.t, list, 1, "sessions on %s", name)
	return list[0]
}

func (p *httpPool) close() {
	for _, srv := range p.servers {
		_ = srv.Close()
	}
	for _, ln := range p.members {
		_ = ln.Close()
	}
	p.served.Wait()
}

// countingDialer dials mtcp sessions for an http.Transport and counts them.
type countingDialer struct {
	d     *Dialer
	dials atomic.Int32
	mu    sync.Mutex
	conns []*Conn
}

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.dials.Add(1)
	c, err := d.d.DialContext(ctx, network, addr)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c.(*Conn))
		d.mu.Unlock()
	}
	return c, err
}

func (d *countingDialer) session() *Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[len(d.conns)-1]
}

// httpGet fetches request id of n bytes, checks its body by SHA-256, and
// returns the member that answered.
func httpGet(t testing.TB, client *http.Client, base string, id int, n int64) string {
	t.Helper()
	resp, err := client.Get(fmt.Sprintf("%s/r?id=%d&n=%d", base, id, n))
	require.NoError(t, err, "request %d", id)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "request %d", id)
	h := sha256.New()
	_, err = io.Copy(h, resp.Body)
	require.NoError(t, err, "request %d", id)
	require.Equal(t, digestOf(n, uint64(id)), h.Sum(nil), "request %d: body", id)
	return resp.Header.Get("X-Member")
}

// TestDrainMidResponseSettles drains the member serving a keep-alive HTTP
// connection while a response is half written, with a handler whose
// answers name their member: the move waits until the response is done
// and the connection is idle at its checkpoint, then the session moves.
// The response arrives whole from the first member, the next from another,
// over the one connection; no request runs twice, nothing diverges, and
// the drain returns within its bound.
func TestDrainMidResponseSettles(t *testing.T) {
	p := startHTTPPool(t, 3, nil)
	cd := &countingDialer{d: &Dialer{Logger: testLogger(t)}}
	tr := &http.Transport{DialContext: cd.DialContext, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	base := "http://" + p.members[0].Addr().String()

	const size = 256 << 10
	id := 1
	get := func() string {
		member := httpGet(t, client, base, id, size)
		<-p.idle // the server checkpointed the idle connection
		id++
		return member
	}
	require.Equal(t, "m0", get())
	waitMembers(t, cd.session(), 3)
	require.Equal(t, "m0", get())

	// Request 3 stops halfway; the drain starts meanwhile.
	held := id
	release := p.hold(held)
	type result struct {
		member string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := client.Get(fmt.Sprintf("%s/r?id=%d&n=%d", base, held, size))
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		h := sha256.New()
		_, err = io.Copy(h, resp.Body)
		if err == nil && string(h.Sum(nil)) != string(digestOf(size, uint64(held))) {
			err = fmt.Errorf("request %d: body differs", held)
		}
		got <- result{member: resp.Header.Get("X-Member"), err: err}
	}()
	require.Eventually(t, func() bool { return p.invocations(held) == 1 }, 10*time.Second, time.Millisecond)
	srv := p.serverEnd("m0")
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		drained <- p.member("m0").Drain(ctx)
	}()
	require.Eventually(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.server.settle.waiting
	}, 10*time.Second, time.Millisecond, "the drain asks the session to move")
	srv.mu.Lock()
	sent := srv.server.moveSent
	srv.mu.Unlock()
	require.False(t, sent, "no MOVE mid-response")
	require.True(t, srv.Status().Settling)
	release()
	r := <-got
	require.NoError(t, r.err)
	require.Equal(t, "m0", r.member, "the response comes whole from the member that began it")
	<-p.idle
	id++

	require.NoError(t, <-drained, "the drain finishes")
	for i := 0; i < 3; i++ {
		require.NotEqual(t, "m0", get(), "served elsewhere after the drain")
	}
	for i := 1; i < id; i++ {
		require.Equal(t, 1, p.invocations(i), "request %d ran once", i)
	}
	require.EqualValues(t, 1, cd.dials.Load(), "one connection throughout")
	require.NoError(t, cd.session().Err())
}
