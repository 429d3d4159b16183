package scenario

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestChaos runs the multi-process chaos harness (internal/cmd/mtcp-chaos):
// member processes killed with SIGKILL at random and restarted while clients
// stream stateful echoes through a service address in front of the live
// members. A session whose member and every member holding copies of its
// checkpoints were killed before it could move is lost by design (a double
// failure, counted apart); the test fails on any other failed session, any
// lost byte outside those, and unless members crashed and sessions failed
// over. It runs 8 s by default; MTCP_CHAOS_DURATION (e.g. 60s, 10m) runs it
// longer, within a test timeout 3 minutes longer (go test -timeout 15m for
// 10m).
func TestChaos(t *testing.T) {
	duration := 8 * time.Second
	if d := os.Getenv("MTCP_CHAOS_DURATION"); d != "" {
		var err error
		if duration, err = time.ParseDuration(d); err != nil {
			t.Fatalf("MTCP_CHAOS_DURATION: %v", err)
		}
	}
	// The harness runs for the duration, then waits for its sessions (a
	// lost one takes a resume timeout) and gives up 2 minutes after.
	if dl, ok := t.Deadline(); ok && time.Until(dl) < duration+3*time.Minute {
		t.Fatalf("a %v chaos run needs a test timeout above %v: go test -timeout %v",
			duration, duration+3*time.Minute, (duration + 5*time.Minute).Round(time.Minute))
	}
	// The harness waits between kEvery/2 and 3*kEvery/2 before each kill;
	// at 1.5 s even the longest waits leave room for three kills (and their
	// restarts) in 8 s.
	const killEvery = 1500 * time.Millisecond
	minCrashes := max(3, int(duration/(2*killEvery)))
	bin := filepath.Join(t.TempDir(), "mtcp-chaos")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/migratory/mtcp/internal/cmd/mtcp-chaos").CombinedOutput(); err != nil {
		t.Fatalf("building mtcp-chaos: %v\n%s", err, out)
	}
	args := []string{"-duration", duration.String(), "-member", memberBinary(t), "-clients", "16",
		"-kill-every", killEvery.String()}
	out, err := exec.Command(bin, args...).CombinedOutput()
	t.Logf("\n%s", out)
	if err != nil {
		t.Fatalf("chaos run failed: %v", err)
	}
	// The harness is a separate program: its summary (run.go, summary.String)
	// is all the test can read.
	figure := func(what string, re *regexp.Regexp) int64 {
		t.Helper()
		m := re.FindSubmatch(out)
		if m == nil {
			t.Fatalf("the summary has no %s (%s)", what, re)
		}
		n, err := strconv.ParseInt(string(m[1]), 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return n
	}
	crashes := figure("crashes", regexp.MustCompile(`(?m)^  members +\d+ live, (\d+) crashes`))
	completed := figure("completed sessions", regexp.MustCompile(`(?m)^  sessions +\d+ \((\d+) completed, \d+ failed\)`))
	failed := figure("failed sessions", regexp.MustCompile(`(?m)^  sessions +\d+ \(\d+ completed, (\d+) failed\)`))
	doubles := figure("double failures", regexp.MustCompile(`(?m)^  double failures +(\d+) `))
	others := figure("other failures", regexp.MustCompile(`(?m)^  other failures +(\d+) `))
	failovers := figure("failovers", regexp.MustCompile(`(?m)^  failovers +(\d+) `))
	lost := figure("lost bytes", regexp.MustCompile(`(?m)^  lost bytes +(\d+)$`))
	mismatches := figure("digest mismatches", regexp.MustCompile(`(?m)^  digest mismatches +(\d+)$`))
	if lost != 0 {
		t.Errorf("%d bytes lost outside double failures, want 0", lost)
	}
	if mismatches != 0 {
		t.Errorf("%d digest mismatches, want 0", mismatches)
	}
	if others != 0 {
		t.Errorf("%d sessions failed other than by a double failure, want 0", others)
	}
	if failed != doubles+others {
		t.Errorf("%d failed sessions, but %d double failures and %d others", failed, doubles, others)
	}
	if doubles > 0 {
		t.Logf("%d sessions lost with their member and every member holding their copies (by design)", doubles)
	}
	if completed == 0 {
		t.Errorf("no session completed")
	}
	if crashes < int64(minCrashes) {
		t.Errorf("%d crashes, want at least %d", crashes, minCrashes)
	}
	if failovers == 0 {
		t.Errorf("no failover: no session was restored from a checkpoint on another member")
	}
}
