package stream

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

var finSeen = wire.Ack{Limit: 1 << 20, Release: 1000, FinSeen: true}

// A peer that saw the end of the previous server's output acknowledges it
// again at once; the restored application regenerates the end later.
func TestRestoredStreamTakesTheEndSeenBeforeItsOwn(t *testing.T) {
	s := restore(t, 100, 1000, 1000)
	require.NoError(t, s.OnAck(finSeen), "the peer saw the end before the restore")
	require.False(t, s.OutputDone())
	require.NoError(t, s.EndOutput(HalfClosed), "the end regenerated where the peer saw it")
	require.True(t, s.OutputDone(), "the peer has the end already")
	_, _, ok := s.NextEnd()
	require.False(t, ok, "no FIN goes again")
	require.NoError(t, s.OnAck(finSeen))
}

// A CLOSE says more than the FIN the peer saw: it goes out.
func TestRestoredStreamSendsACloseAfterAnEndSeen(t *testing.T) {
	s := restore(t, 100, 1000, 1000)
	require.NoError(t, s.OnAck(finSeen))
	require.NoError(t, s.EndOutput(Closed))
	kind, pos, ok := s.NextEnd()
	require.True(t, ok)
	require.Equal(t, Closed, kind)
	require.Equal(t, uint64(1000), pos)
	require.NoError(t, s.OnAck(finSeen))
	require.True(t, s.OutputDone())
}

// The end seen by the peer lies at the end of the regenerated output.
func TestRestoredStreamRegeneratesUpToTheEndSeen(t *testing.T) {
	s := restore(t, 100, 1000, 1800)
	require.NoError(t, s.OnAck(finSeen), "acknowledged while the output is regenerated")
	_, err := s.Write(pattern(800))
	require.NoError(t, err)
	require.NoError(t, s.EndOutput(HalfClosed))
	require.True(t, s.OutputDone())
}

func TestRestoredStreamWritingPastTheEndSeenDiverges(t *testing.T) {
	s := restore(t, 100, 1000, 1800)
	require.NoError(t, s.OnAck(finSeen))
	_, err := s.Write(pattern(700))
	require.NoError(t, err)
	_, err = s.Write(pattern(101))
	require.ErrorIs(t, err, ErrDiverged)
	require.ErrorContains(t, err, "the peer saw the end of the output at 1800")
}

func TestRestoredStreamEndingBeforeTheEndSeenDiverges(t *testing.T) {
	s := restore(t, 100, 1000, 1800)
	require.NoError(t, s.OnAck(finSeen))
	_, err := s.Write(pattern(799))
	require.NoError(t, err)
	require.ErrorIs(t, s.EndOutput(HalfClosed), ErrDiverged)
	require.ErrorIs(t, s.EndOutput(Closed), ErrDiverged)
}

// Ending the output while it is being regenerated cuts it short of what
// the peer received, whether or not the peer saw an end.
func TestRestoredStreamEndingWhileRegeneratingDiverges(t *testing.T) {
	s := restore(t, 100, 1000, 1800)
	_, err := s.Write(pattern(500))
	require.NoError(t, err)
	err = s.EndOutput(HalfClosed)
	require.ErrorIs(t, err, ErrDiverged)
	require.ErrorContains(t, err, "the output ends at 1500, before the 1800 bytes the peer received")
}

// The application wrote past the position where the peer saw the end
// before the peer said it did.
func TestRestoredStreamEndSeenAfterWritingPastItDiverges(t *testing.T) {
	s := restore(t, 100, 1000, 1000)
	_, err := s.Write(pattern(10))
	require.NoError(t, err)
	require.ErrorIs(t, s.OnAck(finSeen), ErrDiverged)
}

// Without a restore, an end acknowledged before it was sent is a protocol
// violation, as it always was.
func TestEndAcknowledgedBeforeSentIsAViolation(t *testing.T) {
	s := New(testCfg, 1<<20)
	require.ErrorIs(t, s.OnAck(wire.Ack{Limit: 1 << 20, FinSeen: true}), ErrProtocol)
}

// The peer of a restored server: the end of the server's output it saw
// must come again at the same position; DATA past it, or an end
// elsewhere, is a divergence.
func TestPeerOfARestoreChecksTheEndItSaw(t *testing.T) {
	newClient := func() *Stream {
		c := New(testCfg, 1<<20)
		deliver(t, c, 0, pattern(100))
		require.NoError(t, c.OnEnd(HalfClosed, 100))
		require.NoError(t, c.Resume(wire.Positions{Limit: 1 << 20}))
		c.PeerRestored()
		return c
	}
	c := newClient()
	require.NoError(t, c.OnEnd(HalfClosed, 100), "the same end again")
	require.NoError(t, c.OnEnd(Closed, 100), "a CLOSE where the FIN was")
	_, err := newClient().BeginData(100, 1)
	require.ErrorIs(t, err, ErrDiverged)
	require.ErrorIs(t, newClient().OnEnd(HalfClosed, 101), ErrDiverged)

	// Without a restore, the same is a protocol violation.
	c = New(testCfg, 1<<20)
	deliver(t, c, 0, pattern(100))
	require.NoError(t, c.OnEnd(HalfClosed, 100))
	_, err = c.BeginData(100, 1)
	require.ErrorIs(t, err, ErrProtocol)
}

// A client's own end goes again to a server that restored the session,
// even if the previous server acknowledged it.
func TestPeerOfARestoreSendsItsEndAgain(t *testing.T) {
	c := New(testCfg, 1<<20)
	_, _ = c.Write(pattern(10))
	require.NoError(t, c.EndOutput(HalfClosed))
	_, _, _ = c.nextData(1 << 20)
	_, _, ok := c.NextEnd()
	require.True(t, ok)
	require.NoError(t, c.OnAck(wire.Ack{Limit: 1 << 20, Release: 10, FinSeen: true}))
	require.True(t, c.OutputDone())
	require.NoError(t, c.Resume(wire.Positions{Received: 10, Limit: 1 << 20, Release: 10}))
	c.PeerRestored()
	kind, pos, ok := c.NextEnd()
	require.True(t, ok)
	require.Equal(t, HalfClosed, kind)
	require.Equal(t, uint64(10), pos)
}
