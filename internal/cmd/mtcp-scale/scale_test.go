package main

import (
	"bytes"
	"flag"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain runs the client process of a scenario when the test binary is
// one, else the tests, failing the run if any goroutine outlives them.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" { // the client process of a scenario
		runChild()
	}
	goleak.VerifyTestMain(m)
}

// smoke runs scenarios with the given flags and fails the test if one did
// not run to its end or saw bytes other than sent.
func smoke(t *testing.T, args ...string) {
	t.Helper()
	var o options
	fs := flag.NewFlagSet("mtcp-scale", flag.ContinueOnError)
	o.flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o.out = &out
	start := time.Now()
	status := run(&o)
	t.Logf("%v\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if status != 0 {
		t.Fatalf("exit status %d", status)
	}
}

// TestSmoke runs every scenario at a tiny size, the clients of those that
// have many in a child process, as they go when the file limit is low.
func TestSmoke(t *testing.T) {
	smoke(t, "-count=1", "-clients=child", "-dialers=8",
		"-sessions=50", "-idle-interval=100ms", "-idle-settle=50ms", "-settle=300ms",
		"-open-sessions=50",
		"-bulk-sessions=1,4", "-bulk-time=200ms", "-bulk-warmup=100ms",
		"-echo-rounds=200",
		"-moves=10", "-move-gap=10ms", "-move-latency=1ms",
		"-drain-sessions=50", "-pool-handshake=2s",
		"-overload-sessions=20", "-overload-warmup=500ms", "-overload-wait=1s",
	)
}
