package mtcp

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/migratory/mtcp/internal/testapp"
	"github.com/migratory/mtcp/pool"
	"github.com/stretchr/testify/require"
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
	var join []string
	for i := 0; i < n; i++ {
		cfg := &Config{
			NodeName: fmt.Sprintf("m%d", i), Gossip: "127.0.0.1:0", Join: join, PoolKey: testPoolKey,
			PoolProfile: pool.ProfileLocal, Logger: testLogger(t),
		}
		if tweak != nil {
			tweak(cfg)
		}
		ln, err := Listen("tcp", "127.0.0.1:0", cfg)
		require.NoError(t, err)
		if i == 0 {
			join = []string{ln.GossipAddr()}
		}
		tp.members = append(tp.members, ln)
		tp.apps.serve(ln)
	}
	require.Eventually(t, func() bool {
		for _, ln := range tp.members {
			if len(ln.Members()) != n {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "members see each other")
	return tp
}

func (tp *testPool) member(name string) *Listener {
	for _, ln := range tp.members {
		if ln.NodeName() == name {
			return ln
		}
	}
	tp.t.Fatalf("no member %s", name)
	return nil
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
	wg      sync.WaitGroup
	paused  sync.Map // node name -> chan struct{}: the app there stops reading until it is closed
	mu      sync.Mutex
	final   map[string][]byte // session -> digest of all input, at EOF
	served  map[string][]string
	errs    []error
	restore map[string]int // session -> times restored from a checkpoint
}

func newStatefulApps() *statefulApps {
	return &statefulApps{final: map[string][]byte{}, served: map[string][]string{}, restore: map[string]int{}}
}

func (a *statefulApps) serve(ln *Listener) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.run(ln.NodeName(), c.(*Conn))
			}()
		}
	}()
}

func (a *statefulApps) run(node string, c *Conn) {
	testapp.Echo(c, testapp.Events{
		Started: func(id string, restored bool) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.served[id] = append(a.served[id], node)
			if restored {
				a.restore[id]++
			}
		},
		Final: func(id string, digest []byte) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.final[id] = digest
		},
		Failed: func(id string, err error) {
			if !errors.Is(err, ErrMigrated) {
				a.fail(fmt.Errorf("%s: %w", node, err))
			}
		},
		Pause: func() <-chan struct{} {
			if p, ok := a.paused.Load(node); ok {
				return p.(chan struct{})
			}
			return nil
		},
	})
}

func (a *statefulApps) fail(err error) {
	a.mu.Lock()
	a.errs = append(a.errs, err)
	a.mu.Unlock()
}

func (a *statefulApps) wait() { a.wg.Wait() }

func (a *statefulApps) finalDigest(id string) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.final[id]
}

func (a *statefulApps) errors() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.errs...)
}

func (a *statefulApps) servedBy(id string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.served[id]...)
}

// waitMembers waits until a client knows the whole pool.
func waitMembers(t testing.TB, c net.Conn, n int) {
	require.Eventually(t, func() bool { return len(c.(*Conn).Members()) == n }, 5*time.Second, 5*time.Millisecond)
}

// pause makes the application on node stop reading until the returned
// function is called.
func (a *statefulApps) pause(node string) (resume func()) {
	ch := make(chan struct{})
	a.paused.Store(node, ch)
	return func() {
		a.paused.Delete(node)
		close(ch)
	}
}
