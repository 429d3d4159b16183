// Package crashhook lets package mtcptest stop a Listener the way a killed
// process stops, without a method for it in the public API of package mtcp
// or of package pool. Each of them registers its function when it is
// initialised.
package crashhook

import "sync/atomic"

var crash, crashRuntime atomic.Pointer[func(any)]

// Register sets the function Crash calls (package mtcp's).
func Register(f func(listener any)) { crash.Store(&f) }

// Crash stops listener (a *mtcp.Listener) as a crash of its process would.
func Crash(listener any) {
	if f := crash.Load(); f != nil {
		(*f)(listener)
	}
}

// RegisterRuntime sets the function CrashRuntime calls (package pool's).
func RegisterRuntime(f func(runtime any)) { crashRuntime.Store(&f) }

// CrashRuntime stops runtime (a *pool.Runtime, a Listener's member) as a
// crash of its process would: no leaving, no goodbyes, no forgetting.
func CrashRuntime(runtime any) {
	if f := crashRuntime.Load(); f != nil {
		(*f)(runtime)
	}
}
