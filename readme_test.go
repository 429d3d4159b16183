package mtcp

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReadmeQuickstart builds the README's quickstart server and client as
// written, runs them, and checks the answer.
func TestReadmeQuickstart(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	block := func(tag string) string {
		re := regexp.MustCompile("(?s)<!-- quickstart:" + tag + " -->\n```go\n(.*?)```")
		m := re.FindSubmatch(readme)
		require.NotNil(t, m, "the README has a %s block", tag)
		return string(m[1])
	}
	dir := t.TempDir()
	repo, err := os.Getwd()
	require.NoError(t, err)
	build := func(name string) string {
		src := filepath.Join(repo, "internal", "readmecheck_"+name)
		require.NoError(t, os.MkdirAll(src, 0o755))
		t.Cleanup(func() { os.RemoveAll(src) })
		require.NoError(t, os.WriteFile(filepath.Join(src, "main.go"), []byte(block(name)), 0o644))
		bin := filepath.Join(dir, name)
		out, err := exec.Command("go", "build", "-o", bin, "./internal/readmecheck_"+name).CombinedOutput()
		require.NoError(t, err, "building the README's %s: %s", name, out)
		return bin
	}
	server, client := build("server"), build("client")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, server)
	require.NoError(t, srv.Start())
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	var out []byte
	require.Eventually(t, func() bool {
		out, err = exec.CommandContext(ctx, client).CombinedOutput()
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "the client runs against the server: %s", out)
	require.Equal(t, "hello, gopher", strings.TrimSpace(string(out)))
}
