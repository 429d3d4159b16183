package ctlflood

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Process is a flood run by the test binary in a process of its own.
type Process struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan struct{}
	mu      sync.Mutex
	opened  []int64 // per address
	dropped []int64
}

// StartProcess runs the test binary again, running only the test t, in a
// process that floods each of addrs with cfg.Conns connections. In that
// process the environment variable env holds what to flood: t must begin
// with a call of Child(env, ...), which then floods in place of the test.
// The flood ends when Stop is called, or when t ends.
func StartProcess(t testing.TB, env string, addrs []string, cfg Config) *Process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", env, strings.Join(addrs, ","), cfg.Conns, cfg.Reconnect))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{cmd: cmd, stdin: stdin, done: make(chan struct{}),
		opened: make([]int64, len(addrs)), dropped: make([]int64, len(addrs))}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var i int
			var opened, dropped int64
			if _, err := fmt.Sscanf(sc.Text(), "flood %d %d %d", &i, &opened, &dropped); err == nil && i < len(addrs) {
				p.mu.Lock()
				p.opened[i], p.dropped[i] = opened, dropped
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(p.Stop)
	return p
}

// Counts returns the connections opened to addrs[i] in all, and those the
// server dropped, as the flooding process last reported them.
func (p *Process) Counts(i int) (opened, dropped int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opened[i], p.dropped[i]
}

// Stop ends the flood and waits for its process.
func (p *Process) Stop() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.cmd.Wait()
}

// Child reports whether the test binary runs as a flooding process started
// by StartProcess (the environment variable env is set). If it does, it
// floods as cfg says (the addresses, the number of connections and the
// reconnect pause taken from env) until standard input closes, reporting
// its counts on standard output as it goes.
func Child(t testing.TB, env string, cfg Config) bool {
	spec := os.Getenv(env)
	if spec == "" {
		return false
	}
	var addrs string
	if _, err := fmt.Sscanf(spec, "%s %d %d", &addrs, &cfg.Conns, &cfg.Reconnect); err != nil {
		t.Fatalf("%s=%q: %v", env, spec, err)
	}
	var floods []*Flood
	for _, a := range strings.Split(addrs, ",") {
		c := cfg
		c.Addr = a
		floods = append(floods, Start(c))
	}
	report := func() {
		for i, f := range floods {
			fmt.Printf("flood %d %d %d\n", i, f.Opened.Load(), f.Dropped.Load())
		}
	}
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		report()
		select {
		case <-tick.C:
			continue
		case <-eof:
		}
		break
	}
	for _, f := range floods {
		f.Stop()
	}
	report()
	return true
}
