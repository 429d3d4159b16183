package testenv

import (
	"strings"
	"testing"
)

// recorder is a testing.TB that records a skip or a failure instead of
// acting on it.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = format
	panic(r)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r)
}

func run(f func(t testing.TB)) (r *recorder) {
	r = &recorder{}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	f(r)
	return r
}

func TestMissingCommandSkipsOrFails(t *testing.T) {
	need := func(t testing.TB) { Command(t, "mtcp-no-such-command", "mtcp-no-such-package") }

	t.Setenv(RequireAllVar, "")
	r := run(need)
	if r.skipped == "" || r.failed != "" {
		t.Fatalf("without %s: skipped %q, failed %q; want a skip", RequireAllVar, r.skipped, r.failed)
	}

	t.Setenv(RequireAllVar, "1")
	r = run(need)
	if r.failed == "" || r.skipped != "" {
		t.Fatalf("with %s: skipped %q, failed %q; want a failure", RequireAllVar, r.skipped, r.failed)
	}
}

func TestPresentCommand(t *testing.T) {
	t.Setenv(RequireAllVar, "1")
	var path string
	r := run(func(tb testing.TB) { path = Command(tb, "sh", "dash") })
	if r.failed != "" || r.skipped != "" || !strings.HasSuffix(path, "/sh") {
		t.Fatalf("sh: path %q, skipped %q, failed %q", path, r.skipped, r.failed)
	}
}
