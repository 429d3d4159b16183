// Package testenv lets tests ask for what they need of the machine (a
// command, root) and say what to install when it is missing.
//
// A test whose need is not met is skipped with a message naming the
// package to install, so that `go test ./...` passes on a fresh machine. In
// CI, where everything is installed (.ci/run), MTCP_TEST_REQUIRE_ALL=1 turns
// each such skip into a failure: nothing is skipped silently there.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireAllVar is the environment variable that turns a missing need into
// a test failure instead of a skip.
const RequireAllVar = "MTCP_TEST_REQUIRE_ALL"

// Strict reports whether missing needs fail tests (RequireAllVar is set).
func Strict() bool { return os.Getenv(RequireAllVar) != "" }

// missing skips t, or fails it in strict mode, saying what is missing and
// how to get it.
func missing(t testing.TB, what, how string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s (%s; %s is set, so this fails instead of skipping)", what, how, RequireAllVar)
	}
	t.Skipf("skipped: %s (%s; .ci/run installs it)", what, how)
}

// Command returns the path of the command name, or skips t (fails it in
// strict mode) with pkg, the Debian package that provides it.
func Command(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		missing(t, name+" is not installed", "apt-get install "+pkg)
	}
	return path
}

// Root skips t (fails it in strict mode) unless the test runs as root.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "this test needs root for "+why, "run it as root")
	}
}
