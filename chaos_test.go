package mtcp

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChaos runs the multi-process chaos harness (internal/cmd/mtcp-chaos):
// member processes killed with SIGKILL at random and restarted while clients
// stream stateful echoes; it fails on any lost byte or failed session. It
// runs 8 s by default; MTCP_CHAOS_DURATION (e.g. 60s, 10m) runs it longer.
func TestChaos(t *testing.T) {
	duration := 8 * time.Second
	if d := os.Getenv("MTCP_CHAOS_DURATION"); d != "" {
		var err error
		if duration, err = time.ParseDuration(d); err != nil {
			t.Fatalf("MTCP_CHAOS_DURATION: %v", err)
		}
	}
	bin := filepath.Join(t.TempDir(), "mtcp-chaos")
	if out, err := exec.Command("go", "build", "-o", bin, "./internal/cmd/mtcp-chaos").CombinedOutput(); err != nil {
		t.Fatalf("building mtcp-chaos: %v\n%s", err, out)
	}
	args := []string{"-duration", duration.String(), "-member", memberBinary(t), "-clients", "16", "-kill-every", "2s"}
	out, err := exec.Command(bin, args...).CombinedOutput()
	t.Logf("\n%s", out)
	if err != nil {
		t.Fatalf("chaos run failed: %v", err)
	}
	if !strings.Contains(string(out), "lost bytes        0") {
		t.Fatalf("the summary does not report 0 lost bytes")
	}
}
