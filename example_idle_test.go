package mtcp_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/migratory/mtcp"
)

// shout serves a line protocol: it answers each line with the line in
// upper case, prefixed by the member's name. Between two requests it holds
// no state, so it checkpoints nil state when idle: after its answer, and
// only when its buffered reader holds nothing of a next line (a client may
// send lines back to back, and a checkpoint that covered a line read but
// not answered would make a member restoring it skip that line). A drain
// moves the session at such a point; the member that takes it over reads
// the client's next line and goes on.
func shout(member string, c *mtcp.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	idle := func() {
		if r.Buffered() == 0 {
			_ = c.Checkpoint(nil)
		}
	}
	idle()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "%s: %s", member, strings.ToUpper(line)); err != nil {
			return
		}
		idle()
	}
}

// A request/response protocol moves between members without state of its
// own when its server checkpoints whenever it is idle between requests.
// The member serving the session is drained: the session moves between two
// answers, and the next line is answered by the other member.
func Example_checkpointWhenIdle() {
	a, b := startTwoMembers(shout)
	defer b.Close()

	c, err := mtcp.Dial("tcp", a.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	r := bufio.NewReader(c)
	answer := func() {
		line, err := r.ReadString('\n')
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(line)
	}
	fmt.Fprint(c, "one\ntwo\n") // two requests at once
	answer()
	answer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Drain(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Fprint(c, "three\n")
	answer()
	c.Close()
	<-c.(*mtcp.Conn).Done() // the session ends once both ends closed
	// Output:
	// a: ONE
	// a: TWO
	// b: THREE
}
