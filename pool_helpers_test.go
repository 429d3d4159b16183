package mtcp

import (
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

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
			join = []string{ln.node.pool.GossipAddr()}
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
	defer c.Close()
	h := sha256.New()
	if st := c.State(); st != nil {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st); err != nil {
			a.fail(fmt.Errorf("%s: bad state: %w", node, err))
			return
		}
	}
	a.mu.Lock()
	a.served[c.SessionID()] = append(a.served[c.SessionID()], node)
	if c.State() != nil {
		a.restore[c.SessionID()]++
	}
	a.mu.Unlock()
	if err := c.Checkpoint(mustState(h)); err != nil {
		a.fail(err)
		return
	}
	buf := make([]byte, 16<<10)
	for {
		if p, ok := a.paused.Load(node); ok {
			<-p.(chan struct{}) // overloaded: reads nothing for a while
		}
		n, err := c.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, werr := c.Write(buf[:n]); werr != nil {
				if !errors.Is(werr, ErrMigrated) {
					a.fail(fmt.Errorf("%s: write: %w", node, werr))
				}
				return
			}
			if err := c.Checkpoint(mustState(h)); err != nil {
				if !errors.Is(err, ErrMigrated) {
					a.fail(fmt.Errorf("%s: checkpoint: %w", node, err))
				}
				return
			}
		}
		if err == io.EOF {
			a.mu.Lock()
			a.final[c.SessionID()] = h.Sum(nil)
			a.mu.Unlock()
			_ = c.CloseWrite()
			_, _ = io.Copy(io.Discard, c)
			return
		}
		if err != nil {
			if !errors.Is(err, ErrMigrated) {
				a.fail(fmt.Errorf("%s: read: %w", node, err))
			}
			return
		}
	}
}

func mustState(h any) []byte {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
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
