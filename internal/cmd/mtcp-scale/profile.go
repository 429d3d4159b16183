package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
)

// The drain scenario can profile the CPU of its servers and of its clients
// while Drain runs only (-drain-cpuprofile): this process writes
// PREFIX.servers.pprof, and the client ends PREFIX.clients.pprof (or, when
// they live in this process, the one profile covers both). Beside each it
// writes the allocations before and after (PREFIX.*.allocs-before.pprof and
// PREFIX.*.allocs-after.pprof): those of Drain are the difference (go tool
// pprof -sample_index=alloc_space -diff_base BEFORE AFTER).

// profiling is the CPU profile a process writes, if any.
var profiling struct {
	mu sync.Mutex
	f  *os.File
	// allocs is where the allocations are written when the profile ends.
	allocs string
}

// writeAllocs writes the allocations of this process so far to path.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	werr := pprof.Lookup("allocs").WriteTo(f, 0)
	return errors.Join(werr, f.Close())
}

// startProfile starts a CPU profile of this process into path.
func startProfile(path string) error {
	profiling.mu.Lock()
	defer profiling.mu.Unlock()
	if profiling.f != nil {
		return fmt.Errorf("a CPU profile is already being written")
	}
	base := strings.TrimSuffix(path, ".pprof")
	if err := writeAllocs(base + ".allocs-before.pprof"); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	profiling.f, profiling.allocs = f, base+".allocs-after.pprof"
	return nil
}

// stopProfile ends the profile startProfile began, if any.
func stopProfile() error {
	profiling.mu.Lock()
	defer profiling.mu.Unlock()
	if profiling.f == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := errors.Join(profiling.f.Close(), writeAllocs(profiling.allocs))
	profiling.f = nil
	return err
}

// Profile starts (a path) or stops (empty) a CPU profile of the agent's
// process; in the parent's process it does nothing.
func (a *Agent) Profile(path string, _ *struct{}) error {
	if os.Getenv(childEnv) != "1" {
		return nil
	}
	if path == "" {
		return stopProfile()
	}
	return startProfile(path)
}

// drainProfile starts the drain's profiles, if asked for, and returns what
// stops them.
func drainProfile(ctx context.Context, o *options, cl *clients) (stop func(), err error) {
	if o.drainProfile == "" {
		return func() {}, nil
	}
	if o.cpuProfile != "" {
		return nil, fmt.Errorf("-cpuprofile and -drain-cpuprofile exclude each other")
	}
	if err := startProfile(o.drainProfile + ".servers.pprof"); err != nil {
		return nil, err
	}
	if cl.remote {
		if err := cl.call(ctx, "Profile", o.drainProfile+".clients.pprof", &struct{}{}); err != nil {
			_ = stopProfile()
			return nil, err
		}
	}
	return func() {
		_ = stopProfile()
		if cl.remote {
			_ = cl.call(ctx, "Profile", "", &struct{}{})
		}
	}, nil
}
