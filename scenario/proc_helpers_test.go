package scenario

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/migratory/mtcp/internal/syncbuf"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp"
)

var (
	memberBinOnce sync.Once
	memberBin     string
	memberBinErr  error
)

// memberBinary builds internal/cmd/mtcp-member once per test run.
func memberBinary(t testing.TB) string {
	memberBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mtcp-member-")
		if err != nil {
			memberBinErr = err
			return
		}
		memberBin = filepath.Join(dir, "mtcp-member")
		out, err := exec.Command("go", "build", "-o", memberBin, "github.com/migratory/mtcp/internal/cmd/mtcp-member").CombinedOutput()
		if err != nil {
			memberBinErr = fmt.Errorf("building mtcp-member: %v\n%s", err, out)
		}
	})
	require.NoError(t, memberBinErr)
	return memberBin
}

// memberProc is a pool member running in its own process.
type memberProc struct {
	t      testing.TB
	name   string
	addr   string
	gossip string
	cmd    *exec.Cmd
	stderr syncbuf.Buffer
	done   chan struct{}

	mu     sync.Mutex
	finals map[string]string // session -> digest of all input (hex)
	events []map[string]any
}

// startMember starts a member process and waits until it serves. prefix
// (e.g. "ip netns exec ns") runs it in another network namespace.
func startMember(t testing.TB, name string, join []string, args []string, prefix ...string) *memberProc {
	bin := memberBinary(t)
	argv := append([]string{bin, "-name", name, "-key", hex.EncodeToString(testPoolKey), "-v"}, args...)
	if len(join) > 0 {
		argv = append(argv, "-join", joinComma(join))
	}
	argv = append(append([]string{}, prefix...), argv...)
	m := &memberProc{t: t, name: name, finals: map[string]string{}, done: make(chan struct{})}
	m.cmd = exec.Command(argv[0], argv[1:]...)
	m.cmd.Stderr = &m.stderr
	stdout, err := m.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, m.cmd.Start())
	ready := make(chan map[string]any, 1)
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			m.mu.Lock()
			m.events = append(m.events, ev)
			if ev["event"] == "final" {
				m.finals[ev["session"].(string)] = ev["digest"].(string)
			}
			m.mu.Unlock()
			if ev["event"] == "ready" {
				ready <- ev
			}
		}
		_ = m.cmd.Wait()
	}()
	select {
	case ev := <-ready:
		m.addr, m.gossip = ev["addr"].(string), ev["gossip"].(string)
	case <-m.done:
		t.Fatalf("member %s exited before serving: %s", name, m.stderr.String())
	case <-time.After(20 * time.Second):
		m.kill()
		t.Fatalf("member %s did not become ready: %s", name, m.stderr.String())
	}
	return m
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// kill stops the process with SIGKILL (no goodbye of any kind).
func (m *memberProc) kill() {
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
}

// stop ends the process gracefully (SIGTERM: it drains) and waits.
func (m *memberProc) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		m.kill()
	}
}

func (m *memberProc) final(session string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.finals[session]
	return d, ok
}

// waitFinal waits until one of members reports the end of session id's
// input and returns the digest of all of it (hex) that the member reported.
func waitFinal(t testing.TB, members []*memberProc, id string) string {
	t.Helper()
	var final string
	require.Eventually(t, func() bool {
		for _, m := range members {
			if d, ok := m.final(id); ok {
				final = d
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "a member saw the end of the input of session %s", id)
	return final
}

// logs returns what the member logged, for failure messages.
func (m *memberProc) logs() string { return m.stderr.String() }

// sessionFailed reports whether the member said the session ended with an
// error containing text.
func (m *memberProc) sessionFailed(session, text string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ev := range m.events {
		if ev["event"] == "failed" && ev["session"] == session && strings.Contains(fmt.Sprint(ev["error"]), text) {
			return true
		}
	}
	return false
}

// procPool is a pool of member processes, the first of which the others
// joined.
type procPool struct {
	t       testing.TB
	args    []string
	members []*memberProc
	next    int // the number in the name of the next member started
}

// startProcPool starts n member processes (p0, p1, ...) with args.
func startProcPool(t testing.TB, n int, args []string) *procPool {
	pp := &procPool{t: t, args: args}
	for i := 0; i < n; i++ {
		var join []string
		if i > 0 {
			join = []string{pp.members[0].gossip}
		}
		pp.members = append(pp.members, startMember(t, fmt.Sprintf("p%d", i), join, args))
	}
	pp.next = n
	return pp
}

// dial opens a session on the first member and waits until its client
// knows every member.
func (pp *procPool) dial(t testing.TB) *mtcp.Conn {
	t.Helper()
	return dialPool(t, nil, pp.members[0].addr, len(pp.members))
}

// killMember kills the member called name with SIGKILL and returns its
// place in the pool (-1 if there is none).
func (pp *procPool) killMember(name string) int {
	for i, m := range pp.members {
		if m.name == name {
			m.kill()
			return i
		}
	}
	return -1
}

// restart starts a new member in place i (that of a member killed), which
// joins through the next member.
func (pp *procPool) restart(i int) {
	name := fmt.Sprintf("p%d", pp.next)
	pp.next++
	pp.members[i] = startMember(pp.t, name, []string{pp.members[(i+1)%len(pp.members)].gossip}, pp.args)
}

// kill kills every member process.
func (pp *procPool) kill() {
	for _, m := range pp.members {
		m.kill()
	}
}

// logs returns what every member logged, for failure messages.
func (pp *procPool) logs() string { return memberLogs(pp.members) }
