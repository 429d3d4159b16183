package mtcp

import (
	"bufio"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// whoAmI answers each line with the member's name, whether the session was
// restored there, and whether State was nil; it checkpoints nil state when
// idle between lines, as a request/response server does.
func whoAmI(member string, c *Conn) {
	defer c.Close()
	if err := c.Checkpoint(nil); err != nil {
		return
	}
	r := bufio.NewReader(c)
	for {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "%s restored=%v state=%v\n", member, c.Restored(), c.State() != nil); err != nil {
			return
		}
		if err := c.Checkpoint(nil); err != nil {
			return
		}
	}
}

// TestRestoredAfterNilCheckpoint: a session whose application checkpoints
// nil state tells a restored session from a new one by Restored, after a
// move and after a failover, in a real pool.
func TestRestoredAfterNilCheckpoint(t *testing.T) {
	p := startAppPool(t, 3, func(cfg *Config) { cfg.Replicas = 1 },
		appOptions{app: func(_ *appPool, member string, c *Conn) { whoAmI(member, c) }})
	defer p.close()
	c, err := (&Dialer{Logger: testLogger(t)}).DialContext(context.Background(), "tcp", p.members[0].Addr().String())
	require.NoError(t, err)
	defer waitSessionEnd(t, c)
	defer c.Close()
	mc := c.(*Conn)
	require.False(t, mc.Restored(), "a client is never restored")
	waitMembers(t, c, 3)
	r := bufio.NewReader(c)
	ask := func() string {
		t.Helper()
		_, err := fmt.Fprintln(c, "?")
		require.NoError(t, err)
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		return line
	}
	require.Equal(t, "m0 restored=false state=false\n", ask(), "a new session")
	for _, ln := range p.members {
		if s := ln.sessionList(); len(s) == 1 {
			require.False(t, s[0].Restored(), "the new session's server end")
		}
	}

	// A client's move is not settled: it restores the newest checkpoint the
	// client can resume from, which names m0 only once it is durable.
	srv := p.member("m0").sessionList()
	require.Len(t, srv, 1)
	waitDurableAtEnd(t, srv[0])
	require.NoError(t, mc.Migrate(context.Background(), p.member("m1").Addr().String()))
	require.Equal(t, "m1 restored=true state=false\n", ask(), "moved by its client")

	// A server's move: the member asks the client to go.
	srv = p.member("m1").sessionList()
	require.Len(t, srv, 1)
	require.True(t, srv[0].Restored())
	require.NoError(t, srv[0].Migrate(context.Background(), p.member("m2").Addr().String()))
	require.Equal(t, "m2 restored=true state=false\n", ask(), "moved by its server")

	// The crash comes once the newest checkpoint has its copy: the answer
	// names its member, so a failover from an older checkpoint diverges.
	srv = p.member("m2").sessionList()
	require.Len(t, srv, 1)
	waitDurableAtEnd(t, srv[0])
	p.member("m2").crash()
	line := ask()
	require.Regexp(t, `^m[01] restored=true state=false\n$`, line, "failed over")
}

// waitDurableAtEnd waits until a server session's durable checkpoint
// covers all it read and wrote.
func waitDurableAtEnd(t testing.TB, c *Conn) {
	t.Helper()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		d := c.server.durable
		return d != nil && d.InPos == c.st.Consumed() && d.OutPos == c.st.Written()
	}, 10*time.Second, time.Millisecond, "the newest checkpoint becomes durable")
}
