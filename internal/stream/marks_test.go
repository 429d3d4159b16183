package stream

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

// sendAll drains what s has for the link and returns the marks among it.
func sendAll(s *Stream) []wire.Mark {
	var marks []wire.Mark
	for {
		if m, ok := s.NextMark(); ok {
			marks = append(marks, m)
			continue
		}
		_, a, b := s.nextData(1 << 20)
		if len(a)+len(b) == 0 {
			return marks
		}
	}
}

// An application that checkpoints after every read without writing (an
// upload) leaves one mark, the newest checkpoint's, however often it
// checkpoints, announced once, and once again after a resume.
func TestCheckpointsWithoutOutputShareOneMark(t *testing.T) {
	s := New(testCfg, 1<<20)
	_, _ = s.Write(pattern(100))
	s.AddMark(1, 0)
	require.Equal(t, []wire.Mark{{Seq: 1, Out: 100, In: 0}}, sendAll(s))
	for i := uint64(2); i <= 2001; i++ {
		s.AddMark(i, i)
		require.Empty(t, sendAll(s), "the peer has its digest at 100 already")
	}
	require.Equal(t, 1, s.Marks())
	require.NoError(t, s.Resume(wire.Positions{Received: 100, Limit: 1 << 20, Release: 100}))
	require.Equal(t, []wire.Mark{{Seq: 2001, Out: 100, In: 2001}}, sendAll(s), "one mark again, the newest")
}

// A mark not yet announced is replaced before it goes out.
func TestANewerCheckpointReplacesAnUnsentMark(t *testing.T) {
	s := New(testCfg, 1<<20)
	_, _ = s.Write(pattern(100))
	s.AddMark(1, 10)
	s.AddMark(2, 20)
	require.Equal(t, []wire.Mark{{Seq: 2, Out: 100, In: 20}}, sendAll(s))
}

// Marks of dropped checkpoints are dropped with them, announced or not.
func TestMarksAreDroppedWithTheirCheckpoints(t *testing.T) {
	s := New(testCfg, 1<<20)
	for i := uint64(1); i <= 4; i++ {
		_, _ = s.Write(pattern(10))
		s.AddMark(i, i)
	}
	_, a, _ := s.nextData(15) // up to 15: mark 1 (at 10) goes out
	require.Len(t, a, 10)
	m, ok := s.NextMark()
	require.True(t, ok)
	require.Equal(t, uint64(1), m.Seq)
	require.True(t, s.MarkMayBeKnown(10), "its output went out")
	require.False(t, s.MarkMayBeKnown(20), "its output is still to go")
	s.KeepMarks(func(out uint64) bool { return out != 10 && out != 30 })
	require.Equal(t, 2, s.Marks())
	require.Equal(t, []wire.Mark{{Seq: 2, Out: 20, In: 2}, {Seq: 4, Out: 40, In: 4}}, sendAll(s))
}
