package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// poolKey is the chaos pool's key (hex).
const poolKey = "6d7463702d6368616f732d706f6f6c2d6b65792d3332627974657321212121"

// member is one member process.
type member struct {
	name, addr, gossip string
	cmd                *exec.Cmd
	done               chan struct{}
	stderr             *lockedBuffer
}

// fleet is the set of member processes, alive and dead, and what they said.
type fleet struct {
	cfg config

	mu      sync.Mutex
	alive   []*member
	next    int
	finals  map[string]string // session -> digest of all input, from whichever member saw the end
	restore int               // sessions resumed on a member from a checkpoint
	all     []*member
}

func newFleet(cfg config) *fleet {
	return &fleet{cfg: cfg, finals: map[string]string{}}
}

// start launches a new member, joining the live ones.
func (f *fleet) start() (*member, error) {
	f.mu.Lock()
	name := fmt.Sprintf("c%d", f.next)
	f.next++
	var join string
	if len(f.alive) > 0 {
		join = f.alive[0].gossip
	}
	f.mu.Unlock()
	args := []string{"-name", name, "-key", poolKey, "-profile", f.cfg.profile,
		"-replicas", fmt.Sprint(f.cfg.replicas), "-v"}
	if join != "" {
		args = append(args, "-join", join)
	}
	m := &member{name: name, done: make(chan struct{}), stderr: &lockedBuffer{}}
	m.cmd = exec.Command(f.cfg.memberBin, args...)
	m.cmd.Stderr = m.stderr
	if f.cfg.verbose {
		m.cmd.Stderr = os.Stderr
	}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			switch ev["event"] {
			case "ready":
				m.addr, m.gossip = ev["addr"].(string), ev["gossip"].(string)
				ready <- nil
			case "final":
				f.mu.Lock()
				f.finals[ev["session"].(string)] = ev["digest"].(string)
				f.mu.Unlock()
			case "started":
				if ev["restored"] == true {
					f.mu.Lock()
					f.restore++
					f.mu.Unlock()
				}
			}
		}
		_ = m.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-m.done:
		return nil, fmt.Errorf("member %s exited at start: %s", name, m.stderr.String())
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		return nil, fmt.Errorf("member %s did not start", name)
	}
	f.mu.Lock()
	f.alive = append(f.alive, m)
	f.all = append(f.all, m)
	f.mu.Unlock()
	return m, nil
}

// kill SIGKILLs a member and forgets it.
func (f *fleet) kill(m *member) {
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, a := range f.alive {
		if a == m {
			f.alive = append(f.alive[:i], f.alive[i+1:]...)
			break
		}
	}
}

// addrs returns the client addresses of the live members.
func (f *fleet) addrs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.alive))
	for _, m := range f.alive {
		out = append(out, m.addr)
	}
	return out
}

// byName returns the live member of that name.
func (f *fleet) byName(name string) *member {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.alive {
		if m.name == name {
			return m
		}
	}
	return nil
}

// final returns the application's digest of a session's input, if a member
// saw its end.
func (f *fleet) final(id string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.finals[id]
	if !ok {
		return nil, false
	}
	b, err := hex.DecodeString(d)
	return b, err == nil
}

// stopAll kills every live member.
func (f *fleet) stopAll() {
	f.mu.Lock()
	alive := append([]*member(nil), f.alive...)
	f.mu.Unlock()
	for _, m := range alive {
		f.kill(m)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
