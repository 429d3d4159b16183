package pool

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testKey = []byte("the pool key of the tests, 32 B.")

// waitLimit bounds every wait for gossip to converge; it is generous so
// that a loaded machine running -race does not fail the tests.
const waitLimit = 10 * time.Second

// testMember is a Pool with a count of its OnChange calls.
type testMember struct {
	*Pool
	changes *atomic.Int64
}

// testConfig returns the Config of a loopback member called name.
func testConfig(t *testing.T, name string, join ...string) Config {
	var logger *slog.Logger
	if os.Getenv("MTCP_POOL_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("member", name)
	}
	port := 20000 + int(name[0])
	return Config{
		NodeName:    name,
		BindAddr:    "127.0.0.1:0",
		Join:        join,
		Key:         testKey,
		ClientAddr:  fmt.Sprintf("127.0.0.1:%d", port),
		ControlAddr: fmt.Sprintf("127.0.0.1:%d", port+1000),
		Logger:      logger,
		Profile:     ProfileLocal,
	}
}

// startMember starts a member from cfg and shuts it down when the test ends.
func startMember(t *testing.T, cfg Config) *testMember {
	t.Helper()
	n := &testMember{changes: new(atomic.Int64)}
	cfg.OnChange = func() { n.changes.Add(1) }
	p, err := New(cfg)
	require.NoError(t, err)
	n.Pool = p
	t.Cleanup(func() { require.NoError(t, p.Shutdown()) })
	return n
}

// startPool starts members with the given names, each joining the first,
// and waits until every one sees them all.
func startPool(t *testing.T, names ...string) []*testMember {
	t.Helper()
	var members []*testMember
	for i, name := range names {
		var join []string
		if i > 0 {
			join = []string{members[0].GossipAddr()}
		}
		members = append(members, startMember(t, testConfig(t, name, join...)))
	}
	for _, n := range members {
		waitMembers(t, n, names...)
	}
	return members
}

// memberNames returns the names of p's members.
func memberNames(p *Pool) []string {
	var out []string
	for _, m := range p.Members() {
		out = append(out, m.Name)
	}
	return out
}

// waitMembers waits until p's members are exactly names.
func waitMembers(t *testing.T, p *testMember, names ...string) {
	t.Helper()
	want := slices.Sorted(slices.Values(names))
	eventually(t, func() bool { return slices.Equal(memberNames(p.Pool), want) },
		"%s sees %v, want %v", p.name, func() any { return memberNames(p.Pool) }, want)
}

// waitMember waits until p sees the member called name satisfy ok.
func waitMember(t *testing.T, p *testMember, name string, ok func(Member) bool) {
	t.Helper()
	eventually(t, func() bool {
		m, found := p.Member(name)
		return found && ok(m)
	}, "%s's view of %s: %v", p.name, name, func() any { m, _ := p.Member(name); return m })
}

// eventually polls cond until it holds or waitLimit passes. Arguments of
// type func() any are called when the message is formatted.
func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			for i, a := range args {
				if f, ok := a.(func() any); ok {
					args[i] = f()
				}
			}
			t.Fatalf("after %v: "+format, append([]any{waitLimit}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

// find returns the records whose message contains s.
func (r *recorder) find(s string) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []slog.Record
	for _, rec := range r.records {
		if strings.Contains(rec.Message, s) {
			out = append(out, rec)
		}
	}
	return out
}

// attr returns the value of rec's attribute key.
func attr(rec slog.Record, key string) string {
	var v string
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}
