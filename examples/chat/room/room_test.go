package room

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp"
	"github.com/migratory/mtcp/mtcptest"
)

// TestNoMessageLostOrRepeated: two clients chat in a room while the member
// serving one of them is drained and then the next one crashes; each
// client sees every message exactly once, in order.
func TestNoMessageLostOrRepeated(t *testing.T) {
	hub := NewMemHub()
	p := mtcptest.NewPool(t, 3, func(c *mtcp.Conn) { _ = Serve(c, hub) })
	alice, bob := p.Dial(), p.Dial()
	defer alice.Close()
	defer bob.Close()
	fmt.Fprintln(alice, "JOIN alice lobby")
	fmt.Fprintln(bob, "JOIN bob lobby")
	ra, rb := bufio.NewReader(alice), bufio.NewReader(bob)

	var sent []string
	say := func(i int) {
		msg := fmt.Sprintf("message %d", i)
		fmt.Fprintln(alice, msg)
		sent = append(sent, "alice: "+msg)
	}
	for i := 0; i < 30; i++ {
		say(i)
		switch i {
		case 10:
			require.NoError(t, p.Move(alice)) // as a drain would
		case 20:
			p.Crash(p.Serving(alice))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Each reads the joins and then the 30 messages, exactly once each.
	read := func(r *bufio.Reader) []string {
		var lines []string
		for len(lines) < 32 {
			line, err := r.ReadString('\n')
			require.NoError(t, err, "after %v", lines)
			lines = append(lines, strings.TrimSpace(line))
		}
		return lines
	}
	for _, lines := range [][]string{read(ra), read(rb)} {
		var said []string
		joins := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "*: ") {
				joins++
				continue
			}
			said = append(said, l)
		}
		require.Equal(t, 2, joins)
		require.Equal(t, sent, said)
	}
}
