package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/migratory/mtcp/internal/syncbuf"
)

// poolKey is the chaos pool's key (hex).
const poolKey = "6d7463702d6368616f732d706f6f6c2d6b65792d3332627974657321212121"

// member is one member process.
type member struct {
	name, addr, gossip string
	cmd                *exec.Cmd
	stdin              io.WriteCloser
	done               chan struct{}
	stderr             *syncbuf.Buffer
	status             chan status // answers to status requests
}

// status is what a member said it held when asked (mtcp-member's "status"
// event): for each session it serves, the members holding copies of its
// checkpoints.
type status struct {
	Tag      string `json:"tag"`
	Sessions []struct {
		ID       string   `json:"id"`
		Replicas []string `json:"replicas"`
	} `json:"sessions"`
}

// death is a member's kill and what it held just before.
type death struct {
	at       time.Time
	reported bool                // it answered the status request
	held     map[string][]string // session -> replicas, as the member said
}

// start is a session's (re)start by the application on a member.
type start struct {
	member string
	at     time.Time
}

// fleet is the set of member processes, alive and dead, and what they said.
type fleet struct {
	cfg   config
	began time.Time

	mu      sync.Mutex
	alive   []*member
	next    int
	finals  map[string]string // session -> digest of all input, from whichever member saw the end
	restore int               // sessions resumed on a member from a checkpoint
	all     []*member
	deaths  map[string]death    // member -> its kill
	started map[string]start    // session -> the member that started it last
	failed  map[string][]string // session -> its applications' failures, "member: error"
}

func newFleet(cfg config) *fleet {
	return &fleet{cfg: cfg, began: time.Now(), finals: map[string]string{},
		deaths: map[string]death{}, started: map[string]start{}, failed: map[string][]string{}}
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
	m := &member{name: name, done: make(chan struct{}), stderr: &syncbuf.Buffer{}, status: make(chan status, 1)}
	m.cmd = exec.Command(f.cfg.memberBin, args...)
	m.cmd.Stderr = m.stderr
	if f.cfg.verbose {
		m.cmd.Stderr = os.Stderr
	}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if m.stdin, err = m.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20) // a status event lists every session
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
				f.mu.Lock()
				f.started[ev["session"].(string)] = start{member: name, at: time.Now()}
				if ev["restored"] == true {
					f.restore++
				}
				f.mu.Unlock()
			case "failed":
				f.mu.Lock()
				id := ev["session"].(string)
				f.failed[id] = append(f.failed[id], fmt.Sprintf("%s: %v", name, ev["error"]))
				f.mu.Unlock()
			case "status":
				var st status
				if json.Unmarshal(sc.Bytes(), &st) == nil {
					select {
					case m.status <- st:
					default:
					}
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

// statusWait bounds the wait for a member's answer to a crash request.
const statusWait = 2 * time.Second

// kill crashes members at once: each reports what it holds and kills
// itself with SIGKILL in the same breath (mtcp-member's "crash" command),
// so the report describes what died; one that does not answer in time is
// killed without a report. What they said is kept: a session lost later is
// lost by design only if its last member and every member holding copies
// of its checkpoints died.
func (f *fleet) kill(ms ...*member) {
	deaths := make([]death, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deaths[i] = m.crash()
		}()
	}
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range ms {
		f.deaths[m.name] = deaths[i]
		for j, a := range f.alive {
			if a == m {
				f.alive = append(f.alive[:j], f.alive[j+1:]...)
				break
			}
		}
	}
}

// crash asks a member to report what it holds (its sessions and the
// members holding copies of their checkpoints) and die, and waits until it
// is dead.
func (m *member) crash() death {
	d := death{held: map[string][]string{}}
	tag := fmt.Sprint(time.Now().UnixNano())
	got := func(st status) bool {
		if st.Tag != tag {
			return false
		}
		d.reported = true
		for _, s := range st.Sessions {
			d.held[s.ID] = s.Replicas
		}
		return true
	}
	if _, err := fmt.Fprintf(m.stdin, "crash %s\n", tag); err == nil {
		timeout := time.After(statusWait)
	wait:
		for {
			select {
			case st := <-m.status:
				if got(st) {
					break wait
				}
			case <-timeout:
				break wait
			case <-m.done:
				// Its output is all read: the report, if any, is waiting.
				select {
				case st := <-m.status:
					got(st)
				default:
				}
				break wait
			}
		}
	}
	d.at = time.Now()
	_ = m.cmd.Process.Signal(syscall.SIGKILL) // if it did not die of itself
	<-m.done
	return d
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

// stopAll ends every live member.
func (f *fleet) stopAll() {
	f.mu.Lock()
	alive := append([]*member(nil), f.alive...)
	f.alive = nil
	f.mu.Unlock()
	for _, m := range alive {
		_ = m.cmd.Process.Signal(syscall.SIGKILL)
		<-m.done
	}
}

// story tells what the members said and logged about a session, for a
// session that failed or differs.
func (f *fleet) story(id string) string {
	f.mu.Lock()
	all := append([]*member(nil), f.all...)
	failed := append([]string(nil), f.failed[id]...)
	f.mu.Unlock()
	var b strings.Builder
	for _, e := range failed {
		fmt.Fprintf(&b, "    application failed on %s\n", e)
	}
	for _, m := range all {
		if m.stderr == nil {
			continue
		}
		for _, line := range strings.Split(m.stderr.String(), "\n") {
			if strings.Contains(line, id) {
				fmt.Fprintf(&b, "    %s\n", line)
			}
		}
	}
	return b.String()
}
