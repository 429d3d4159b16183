package mtcp

import (
	"context"
	"log/slog"
)

// logOn reports whether l logs at level. Calls on the paths every session or
// move takes check it first: the logger is silent by default, and the call
// would still format its arguments (an address, a duration) and, on a fresh
// goroutine, grow its stack for the logger's frame.
func logOn(l *slog.Logger, level slog.Level) bool {
	return l.Enabled(context.Background(), level)
}
