package main

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPoolOfFileservers runs three fileserver processes as a pool and a
// fileserver client downloading a 64 MiB generated file at 16 MiB/s; the
// member serving it is killed with SIGKILL a second in. The download must
// finish with its SHA-256 verified.
func TestPoolOfFileservers(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fileserver")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	key := "00112233445566778899aabbccddeeff"
	addrRE := regexp.MustCompile(`addr=(\S+)`)
	gossipRE := regexp.MustCompile(`gossip=(\S+)`)
	type member struct {
		cmd            *exec.Cmd
		addr, gossipAt string
	}
	start := func(name, join string) member {
		args := []string{"serve", "-name", name, "-listen", "127.0.0.1:0", "-gossip", "127.0.0.1:0", "-key", key}
		if join != "" {
			args = append(args, "-join", join)
		}
		cmd := exec.Command(bin, args...)
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		m := member{cmd: cmd}
		sc := bufio.NewScanner(stderr)
		for (m.addr == "" || m.gossipAt == "") && sc.Scan() {
			line := sc.Text()
			if g := gossipRE.FindStringSubmatch(line); g != nil && strings.Contains(line, "joined pool") {
				m.gossipAt = g[1]
			}
			if a := addrRE.FindStringSubmatch(line); a != nil && strings.Contains(line, "serving files") {
				m.addr = a[1]
			}
		}
		go func() {
			for sc.Scan() {
			}
		}()
		require.NotEmpty(t, m.addr)
		return m
	}
	a := start("a", "")
	start("b", a.gossipAt)
	start("c", a.gossipAt)
	time.Sleep(time.Second) // gossip settles

	get := exec.Command(bin, "get", "-server", a.addr, "-rate", "16", "gen/67108864/9")
	var stdout strings.Builder
	get.Stdout = &stdout
	require.NoError(t, get.Start())
	time.Sleep(time.Second)
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL)) // the member serving the download dies
	require.NoError(t, get.Wait(), "the download survives the crash")
	require.Contains(t, stdout.String(), "67108864 bytes")
	require.Contains(t, stdout.String(), "(verified)")
}
