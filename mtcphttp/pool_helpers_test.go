package mtcphttp

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/internal/localpool"
	"github.com/migratory/mtcp/internal/testenv"
	"github.com/migratory/mtcp/mtcptest"
)

var testKey = []byte("mtcphttp tests: a 32-byte key...")

// testPool is a pool of members on loopback, each serving HTTP through a
// Server; members can be added, drained and crashed.
type testPool struct {
	t       testing.TB
	handler func(name string) http.Handler
	hook    func(name string, c net.Conn, s http.ConnState) // also the servers' ConnState (nil: none)
	server  func(*http.Server)                              // adjusts each member's http.Server (nil: none)
	local   localpool.Pool

	mu      sync.Mutex
	members map[string]*member // by name, once it serves
	next    int
}

// member is one member of a testPool.
type member struct {
	name   string
	ln     *mtcp.Listener
	srv    *Server
	served chan error // what Serve returned
}

// startPool starts n members (m0, m1, ...) and waits until they see each
// other; they stop when the test ends.
func startPool(t testing.TB, n int, handler func(name string) http.Handler, tweak func(*mtcp.Config)) *testPool {
	p := newTestPool(t, handler, tweak)
	for i := 0; i < n; i++ {
		p.add()
	}
	return p
}

// newTestPool returns a pool with no member yet (add starts them), so that
// its hooks can be set first; it stops when the test ends.
func newTestPool(t testing.TB, handler func(name string) http.Handler, tweak func(*mtcp.Config)) *testPool {
	p := &testPool{t: t, handler: handler, members: map[string]*member{}}
	p.local = localpool.Pool{
		Key: testKey,
		Tweak: func(cfg *mtcp.Config) {
			if os.Getenv("MTCP_TEST_LOG") != "" {
				cfg.Logger = testLogger(t)
			}
			if tweak != nil {
				tweak(cfg)
			}
		},
		Serve: p.serve,
	}
	t.Cleanup(p.close)
	return p
}

// serve runs a member's HTTP server over its listener until it stops.
func (p *testPool) serve(name string, ln *mtcp.Listener) {
	hs := &http.Server{
		Handler:           p.handler(name),
		ErrorLog:          log.New(io.Discard, "", 0),
		ReadHeaderTimeout: 30 * time.Second,
	}
	if p.hook != nil {
		hs.ConnState = func(c net.Conn, s http.ConnState) { p.hook(name, c, s) }
	}
	if p.server != nil {
		p.server(hs)
	}
	m := &member{name: name, ln: ln, srv: New(hs, ln), served: make(chan error, 1)}
	p.mu.Lock()
	p.members[name] = m
	p.mu.Unlock()
	m.served <- m.srv.Serve()
}

// add starts one more member, joined to the live ones, and waits until
// every live member sees the others.
func (p *testPool) add() *member {
	p.mu.Lock()
	name := fmt.Sprintf("m%d", p.next)
	p.next++
	p.mu.Unlock()
	_, err := p.local.Start(name, p.local.Join())
	require.NoError(p.t, err)
	var m *member
	require.Eventually(p.t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		m = p.members[name]
		return m != nil
	}, 10*time.Second, time.Millisecond, "member %s serves", name)
	p.waitMembers()
	return m
}

// live returns the members that serve and were not drained or crashed,
// in the order they started.
func (p *testPool) live() []*member {
	lns := p.local.Live()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*member, 0, len(lns))
	for _, ln := range lns {
		if m := p.members[ln.NodeName()]; m != nil {
			out = append(out, m)
		}
	}
	return out
}

// waitMembers waits until every live member sees exactly the live members.
func (p *testPool) waitMembers() {
	live := p.live()
	require.Eventually(p.t, func() bool {
		for _, m := range live {
			if len(m.ln.Members()) != len(live) {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond, "members see each other")
}

// member returns the member called name, which serves.
func (p *testPool) member(name string) *member {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.members[name]
	if m == nil {
		p.t.Fatalf("no member %s", name)
	}
	return m
}

// shutdown drains m with Server.Shutdown.
func (p *testPool) shutdown(m *member, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	p.local.Gone(m.ln)
	return err
}

// crash stops m as a killed process stops.
func (p *testPool) crash(m *member) {
	p.local.Gone(m.ln)
	mtcptest.Crash(m.ln)
	_ = m.srv.Close()
}

func (p *testPool) close() {
	p.mu.Lock()
	members := maps.Clone(p.members)
	p.mu.Unlock()
	for _, m := range members {
		_ = m.srv.Close()
	}
	p.local.Close(0)
}

// dialer dials mtcp sessions for an http.Transport and counts them.
type dialer struct {
	d     mtcp.Dialer
	dials atomic.Int32
	mu    sync.Mutex
	last  *mtcp.Conn
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.dials.Add(1)
	c, err := d.d.DialContext(ctx, network, addr)
	if err == nil {
		d.mu.Lock()
		d.last = c.(*mtcp.Conn)
		d.mu.Unlock()
	}
	return c, err
}

func (d *dialer) session() *mtcp.Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// pattern writes n bytes determined by seed.
func pattern(w io.Writer, n int64, seed uint64) error {
	x := seed*0x9e3779b97f4a7c15 | 1
	buf := make([]byte, 4096)
	for n > 0 {
		k := min(n, int64(len(buf)))
		for i := range buf[:k] {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			buf[i] = byte(x)
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func patternDigest(n int64, seed uint64) []byte {
	h := sha256.New()
	_ = pattern(h, n, seed)
	return h.Sum(nil)
}

// bodyHandler answers GET /r?id=I&n=N with N bytes of pattern I and counts
// the requests by id. Its answers are the same on every member, with no
// Date header, so that a member that restores a session from an older
// checkpoint (after a crash) writes again exactly what the client had.
type bodyHandler struct {
	mu    sync.Mutex
	calls map[uint64]int
}

func newBodyHandler() *bodyHandler { return &bodyHandler{calls: map[uint64]int{}} }

func (h *bodyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err1 := strconv.ParseUint(r.URL.Query().Get("id"), 10, 64)
	n, err2 := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err1 != nil || err2 != nil || n < 0 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.calls[id]++
	h.mu.Unlock()
	w.Header()["Date"] = nil
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	_ = pattern(w, n, id)
}

func (h *bodyHandler) invocations(id uint64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[id]
}

// fetch gets request id of n bytes and checks its body by SHA-256.
func fetch(client *http.Client, base string, id uint64, n int64) (*http.Response, error) {
	resp, err := client.Get(fmt.Sprintf("%s/r?id=%d&n=%d", base, id, n))
	if err != nil {
		return nil, fmt.Errorf("request %d: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("request %d: %s", id, resp.Status)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return nil, fmt.Errorf("request %d: body: %w", id, err)
	}
	if string(h.Sum(nil)) != string(patternDigest(n, id)) {
		return nil, fmt.Errorf("request %d: the body differs", id)
	}
	return resp, nil
}

// testLogger is the logger tests give mtcp (see testenv.Logger).
func testLogger(t testing.TB) *slog.Logger { return testenv.Logger(t) }

// closeClient closes a client session and waits until no member holds a
// session any more, so that the client's end is done before the pool
// closes (a pool closed under a lingering client leaves it reconnecting).
func (p *testPool) closeClient(c net.Conn) {
	_ = c.Close()
	require.Eventually(p.t, func() bool {
		for _, m := range p.live() {
			if m.ln.Sessions() > 0 {
				return false
			}
		}
		return true
	}, 20*time.Second, 5*time.Millisecond, "the session ends")
}
