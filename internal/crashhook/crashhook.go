// Package crashhook lets package mtcptest stop a Listener the way a killed
// process stops, without a method for it in the Listener's public API.
// Package mtcp registers the function when it is initialised.
package crashhook

import "sync/atomic"

var crash atomic.Pointer[func(listener any)]

// Register sets the function Crash calls.
func Register(f func(listener any)) { crash.Store(&f) }

// Crash stops listener (a *mtcp.Listener) as a crash of its process would.
func Crash(listener any) {
	if f := crash.Load(); f != nil {
		(*f)(listener)
	}
}
