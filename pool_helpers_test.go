package mtcp

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/testapp"
	"github.com/migratory/mtcp/pool"
)

var testPoolKey = []byte("0123456789abcdef0123456789abcdef")

// testPool is an in-process pool of members on loopback.
type testPool struct {
	t       testing.TB
	members []*Listener
	apps    *statefulApps
}

// startPool starts n members that serve the stateful echo application.
func startPool(t testing.TB, n int, tweak func(*Config)) *testPool {
	tp := &testPool{t: t, apps: newStatefulApps()}
	tp.members = startMembers(t, n, tweak, tp.apps.serve)
	return tp
}

// memberConfig is the configuration of member name of a test pool that
// joins through join (none for the first member).
func memberConfig(t testing.TB, name string, join []string) *Config {
	return &Config{
		NodeName: name, Gossip: "127.0.0.1:0", Join: join, PoolKey: testPoolKey,
		PoolProfile: pool.ProfileLocal, Logger: testLogger(t),
	}
}

// startMembers starts n members (m0, m1, ...) of one pool on loopback,
// each configured by tweak (if set) and handed to serve, and waits until
// every member sees all of them.
func startMembers(t testing.TB, n int, tweak func(*Config), serve func(*Listener)) []*Listener {
	var members []*Listener
	var join []string
	for i := 0; i < n; i++ {
		cfg := memberConfig(t, fmt.Sprintf("m%d", i), join)
		if tweak != nil {
			tweak(cfg)
		}
		ln, err := Listen("tcp", "127.0.0.1:0", cfg)
		require.NoError(t, err)
		if i == 0 {
			join = []string{ln.GossipAddr()}
		}
		members = append(members, ln)
		serve(ln)
	}
	require.Eventually(t, func() bool {
		for _, ln := range members {
			if len(ln.Members()) != n {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "members see each other")
	return members
}

// memberNamed returns the member called name, failing the test if there is
// none.
func memberNamed(t testing.TB, members []*Listener, name string) *Listener {
	t.Helper()
	for _, ln := range members {
		if ln.NodeName() == name {
			return ln
		}
	}
	t.Fatalf("no member %s", name)
	return nil
}

func (tp *testPool) member(name string) *Listener { return memberNamed(tp.t, tp.members, name) }

// dial opens a session on member name with d (nil: a Dialer with the
// test's logger) and waits until its client knows every member.
func (tp *testPool) dial(t testing.TB, d *Dialer, name string) *Conn {
	t.Helper()
	return dialPool(t, d, tp.member(name).Addr().String(), len(tp.members))
}

// closeSession closes the client end c, waits until the session has ended
// and its application has read the input to its end, and returns the
// digest of that input.
func (tp *testPool) closeSession(t testing.TB, c net.Conn) []byte {
	t.Helper()
	return closeAndDigest(t, c, tp.apps.finalDigest)
}

func (tp *testPool) close() {
	for _, ln := range tp.members {
		ln.Close()
	}
	tp.apps.wait()
}

// statefulApps runs the stateful echo application on members: it echoes its
// input and keeps a running SHA-256 of it as its checkpointed state.
type statefulApps struct {
	wg     sync.WaitGroup
	paused sync.Map // member name -> chan struct{}: the app there stops reading until it is closed
	appRecord
	restore map[string]int // session -> times restored from a checkpoint; under mu
}

func newStatefulApps() *statefulApps {
	a := &statefulApps{restore: map[string]int{}}
	a.init()
	return a
}

// appRecord is what the applications of a test pool did: the members that
// ran each session, each session's final digest and the errors they met.
type appRecord struct {
	mu     sync.Mutex
	final  map[string][]byte   // session -> digest of all input, at EOF
	served map[string][]string // session -> members that ran it, in order
	errs   []error
}

func (r *appRecord) init() {
	r.final, r.served = map[string][]byte{}, map[string][]string{}
}

// setFinal records d, the digest of session id's whole input.
func (r *appRecord) setFinal(id string, d []byte) {
	r.mu.Lock()
	r.final[id] = d
	r.mu.Unlock()
}

func (r *appRecord) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *appRecord) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func (r *appRecord) finalDigest(id string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.final[id]
}

func (r *appRecord) servedBy(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.served[id]...)
}

func (a *statefulApps) serve(ln *Listener) {
	serveEach(&a.wg, ln, nil, func(c *Conn) { a.run(ln.NodeName(), c) })
}

// serveEach accepts ln's sessions, once gate (if not nil) is closed, until
// ln closes, and runs each in a goroutine of its own; wg counts the accept
// loop and the sessions.
func serveEach(wg *sync.WaitGroup, ln *Listener, gate <-chan struct{}, run func(*Conn)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		if gate != nil {
			<-gate
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(c.(*Conn))
			}()
		}
	}()
}

func (a *statefulApps) run(member string, c *Conn) {
	testapp.Echo(c, testapp.Events{
		Started: func(id string, restored bool) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.served[id] = append(a.served[id], member)
			if restored {
				a.restore[id]++
			}
		},
		Final: a.setFinal,
		Failed: func(id string, err error) {
			if !errors.Is(err, ErrMigrated) {
				a.fail(fmt.Errorf("%s: %w", member, err))
			}
		},
		Pause: func() <-chan struct{} {
			if p, ok := a.paused.Load(member); ok {
				return p.(chan struct{})
			}
			return nil
		},
	})
}

func (a *statefulApps) wait() { a.wg.Wait() }

// waitMembers waits until a client knows the whole pool.
func waitMembers(t testing.TB, c net.Conn, n int) {
	require.Eventually(t, func() bool { return len(c.(*Conn).Members()) == n }, 5*time.Second, 5*time.Millisecond)
}

// pause makes the application on member stop reading until the returned
// function is called.
func (a *statefulApps) pause(member string) (resume func()) {
	ch := make(chan struct{})
	a.paused.Store(member, ch)
	return func() {
		a.paused.Delete(member)
		close(ch)
	}
}
