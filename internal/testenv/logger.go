package testenv

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// LogVar names where tests log: unset, nowhere; a path starting with "/",
// that file (for logs too long for a test's output); anything else, the
// test's own log (seen with -v or when it fails).
const LogVar = "MTCP_TEST_LOG"

// Logger returns the logger a test gives mtcp, as LogVar says: nil (silent)
// unless it is set.
func Logger(t testing.TB) *slog.Logger {
	dest := os.Getenv(LogVar)
	if dest == "" {
		return nil
	}
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	if strings.HasPrefix(dest, "/") {
		f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatalf("%s: %v", LogVar, err)
		}
		t.Cleanup(func() { _ = f.Close() })
		return slog.New(slog.NewTextHandler(f, opts)).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(Writer(t), opts))
}

// Writer returns a writer whose lines go to the test's log until the test
// ends, and nowhere after (background goroutines may write later; testing
// panics on a log after the end).
func Writer(t testing.TB) io.Writer {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return w
}

// testWriter writes log lines to the test's output until the test ends
// (background goroutines may log later; testing panics on that).
type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
