package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"sync"
	"time"
)

// The client ends of the sessions that scenarios need many of live in an
// Agent, reached through net/rpc: in this process when the file limit
// allows both ends here, else in a child process (this program re-executed
// with childEnv set) that talks over its standard input and output.
const childEnv = "MTCP_SCALE_CHILD"

// clients is a connection to an Agent.
type clients struct {
	rpc    *rpc.Client
	remote bool
	pid    int
	limit  uint64 // the agent's file limit
	cmd    *exec.Cmd
	mu     sync.Mutex
	closed bool
}

// startClients starts an Agent, in a child process if child is set.
func startClients(ctx context.Context, child bool) (*clients, error) {
	cl := &clients{remote: child}
	if !child {
		a, b := net.Pipe()
		srv := rpc.NewServer()
		if err := srv.Register(newAgent()); err != nil {
			return nil, err
		}
		go srv.ServeConn(a)
		cl.rpc = rpc.NewClient(b)
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting the client process: %w", err)
		}
		cl.cmd = cmd
		cl.rpc = rpc.NewClient(pipeConn{out, in})
	}
	var h HelloReply
	if err := cl.call(ctx, "Hello", struct{}{}, &h); err != nil {
		cl.close()
		return nil, err
	}
	cl.pid, cl.limit = h.PID, h.FileLimit
	return cl, nil
}

// call calls the agent's method, giving up when ctx ends (a child that
// does not answer is then killed by close).
func (cl *clients) call(ctx context.Context, method string, args, reply any) error {
	c := cl.rpc.Go("Agent."+method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-c.Done:
		if c.Error != nil {
			return fmt.Errorf("clients: %s: %w", method, c.Error)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("clients: %s did not return: %w", method, ctx.Err())
	}
}

// stats returns the agent's process figures when it is another process
// (zero figures otherwise: this process's own cover it).
func (cl *clients) stats(ctx context.Context, gc bool) (ProcStats, error) {
	if !cl.remote {
		return ProcStats{}, nil
	}
	var s ProcStats
	err := cl.call(ctx, "Stats", gc, &s)
	return s, err
}

// closeAll closes the agent's connections and sessions, and lets it go
// quiet (at most settle).
func (cl *clients) closeAll(settle time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), settle+30*time.Second)
	defer cancel()
	_ = cl.call(ctx, "CloseAll", settle, &struct{}{})
}

// close stops the agent: its child process ends when its input closes,
// and is killed if it has not after a few seconds.
func (cl *clients) close() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed {
		return
	}
	cl.closed = true
	_ = cl.rpc.Close()
	if cl.cmd == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		_ = cl.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cl.cmd.Process.Kill()
		<-done
	}
}

// pipeConn joins a child's output and input into one connection.
type pipeConn struct {
	io.ReadCloser
	w io.WriteCloser
}

func (p pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p pipeConn) Close() error {
	err := p.w.Close()
	_ = p.ReadCloser.Close()
	return err
}

// runChild serves an Agent on standard input and output until the input
// closes.
func runChild() {
	srv := rpc.NewServer()
	if err := srv.Register(newAgent()); err != nil {
		fmt.Fprintln(os.Stderr, "mtcp-scale client process:", err)
		os.Exit(1)
	}
	srv.ServeConn(pipeConn{os.Stdin, os.Stdout})
	os.Exit(0)
}
