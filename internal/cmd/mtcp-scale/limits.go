package main

import (
	"fmt"
	"syscall"
)

// raiseFileLimit raises this process's limit on open files as far as it
// can: the hard limit itself first (which needs CAP_SYS_RESOURCE), then
// the soft limit to the hard one. It returns the limit in force and a
// sentence on how it came to be.
func raiseFileLimit(want uint64) (uint64, string) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Sprintf("getrlimit: %v", err)
	}
	old := lim
	how := ""
	if lim.Max < want {
		up := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err == nil {
			return want, fmt.Sprintf("raised from %d (hard %d) to %d", old.Cur, old.Max, want)
		} else {
			how = fmt.Sprintf("; raising the hard limit to %d failed: %v", want, err)
		}
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return old.Cur, fmt.Sprintf("%d (raising it to the hard limit %d failed: %v)%s", old.Cur, lim.Max, err, how)
		}
		return lim.Cur, fmt.Sprintf("%d (soft limit raised from %d to the hard limit)%s", lim.Cur, old.Cur, how)
	}
	return lim.Cur, fmt.Sprintf("%d (the hard limit)%s", lim.Cur, how)
}

// fileLimitWanted is the limit asked for: enough for the largest run.
const fileLimitWanted = 1 << 20
