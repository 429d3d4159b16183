package mtcptest_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/mtcptest"
)

// counter is an application under test: it reads lines and answers each
// with how many lines the session has seen, its state checkpointed after
// every answer.
func counter(c *mtcp.Conn) {
	defer c.Close()
	var n uint64
	if st := c.State(); st != nil {
		n = binary.BigEndian.Uint64(st) // restored on a member that took the session over
	}
	_ = c.Checkpoint(binary.BigEndian.AppendUint64(nil, n))
	r := bufio.NewReader(c)
	for {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		n++
		if _, err := fmt.Fprintf(c, "%d\n", n); err != nil {
			return
		}
		if err := c.Checkpoint(binary.BigEndian.AppendUint64(nil, n)); err != nil {
			return
		}
	}
}

// TestCounterSurvivesMovesAndCrashes is how an application tests its
// checkpoints: the session is moved and its member crashed between lines.
func TestCounterSurvivesMovesAndCrashes(t *testing.T) {
	p := mtcptest.NewPool(t, 3, counter)
	c := p.Dial()
	defer c.Close()
	r := bufio.NewReader(c)
	ask := func() string {
		fmt.Fprintln(c, "next")
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return line
	}
	if got := ask(); got != "1\n" {
		t.Fatalf("first answer %q", got)
	}
	if err := p.Move(c); err != nil {
		t.Fatal(err)
	}
	if got := ask(); got != "2\n" {
		t.Fatalf("after a move: %q", got)
	}
	p.Crash(p.Serving(c))
	if got := ask(); got != "3\n" {
		t.Fatalf("after a crash: %q", got)
	}
}
