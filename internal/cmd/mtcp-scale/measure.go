package main

import (
	"runtime"
	"slices"
	"syscall"
	"time"
)

// ProcStats is what a process holds at one moment.
type ProcStats struct {
	PID        int
	Heap       uint64 // live heap after a collection
	Stacks     uint64 // goroutine stacks
	Goroutines int
	CPU        time.Duration // user and system time since the process began
}

// readStats reads this process's figures, after a collection if gc is set.
func readStats(gc bool) ProcStats {
	if gc {
		// Two cycles: the first clears sync.Pools into victim caches, the
		// second frees them.
		runtime.GC()
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return ProcStats{
		PID: syscall.Getpid(), Heap: m.HeapAlloc, Stacks: m.StackInuse,
		Goroutines: runtime.NumGoroutine(), CPU: cpuTime(),
	}
}

// cpuTime is the CPU time this process used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// percentile returns the p-th percentile (0..100) of sorted values.
func percentile[T int64 | float64 | time.Duration](sorted []T, p float64) T {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// median returns the median of vs (the lower middle for an even count).
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
