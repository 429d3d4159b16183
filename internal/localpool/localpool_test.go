package localpool

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp"
)

// TestPoolServesAndCloses: three members find each other, a session on one
// is served by the application, and Close waits for it; an application
// that does not return is reported after the wait.
func TestPoolServesAndCloses(t *testing.T) {
	release := make(chan struct{})
	p := &Pool{Key: []byte("localpool test key, 32 bytes!!!!"), App: func(member string, c *mtcp.Conn) {
		defer c.Close()
		if _, err := fmt.Fprintf(c, "%s\n", member); err != nil {
			return
		}
		<-release
	}}
	var join []string
	for i := range 3 {
		ln, err := p.Start(fmt.Sprintf("m%d", i), join)
		require.NoError(t, err)
		join = []string{ln.GossipAddr()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, Wait(ctx, p.Members(), 3))

	c, err := mtcp.Dial("tcp", p.Members()[1].Addr().String())
	require.NoError(t, err)
	got := make([]byte, 3)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, "m1\n", string(got))

	stuck := p.Close(200 * time.Millisecond)
	require.Len(t, stuck, 1, "the application still waits")
	for sc, member := range stuck {
		require.Equal(t, "m1", member)
		require.Equal(t, c.(*mtcp.Conn).SessionID(), sc.SessionID())
	}
	close(release)
	require.Empty(t, p.WaitApps(0))
	require.NoError(t, c.Close())
}

// TestGoneMembers: a member marked gone is left out of the live members
// and of the addresses new members join through, and a member that joins
// through the others sees the whole pool.
func TestGoneMembers(t *testing.T) {
	p := &Pool{Key: []byte("localpool test key, 32 bytes!!!!"), App: func(_ string, c *mtcp.Conn) { _ = c.Close() }}
	defer p.Close(0)
	require.Empty(t, p.Join())
	var lns []*mtcp.Listener
	for i := range 2 {
		ln, err := p.Start(fmt.Sprintf("m%d", i), p.Join())
		require.NoError(t, err)
		lns = append(lns, ln)
	}
	require.Equal(t, lns, p.Live())
	require.Equal(t, []string{lns[0].GossipAddr(), lns[1].GossipAddr()}, p.Join())

	p.Gone(lns[0])
	require.Equal(t, lns[1:], p.Live())
	require.Equal(t, []string{lns[1].GossipAddr()}, p.Join())
	require.Equal(t, lns, p.Members(), "gone, but still a member started")

	ln, err := p.Start("m2", p.Join())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, Wait(ctx, []*mtcp.Listener{ln}, 3))
}
