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
// upload) keeps one mark, the newest checkpoint's. Each flush announces it
// again if a checkpoint since covers other input (the peer learns how far
// its input is covered), once however many were taken meanwhile, and not
// for a checkpoint that covers the same input; a resume announces it again.
func TestCheckpointsWithoutOutputShareOneMark(t *testing.T) {
	s := New(testCfg, 1<<20)
	_, _ = s.Write(pattern(100))
	s.AddMark(1, 0)
	require.Equal(t, []wire.Mark{{Seq: 1, Out: 100, In: 0}}, sendAll(s))
	for i := uint64(2); i <= 2001; i++ {
		s.AddMark(i, i)
		require.Equal(t, []wire.Mark{{Seq: i, Out: 100, In: i}}, sendAll(s), "the peer learns the input covered")
	}
	s.AddMark(2002, 2001)
	require.Empty(t, sendAll(s), "the same input covered: nothing new to tell")
	for i := uint64(2003); i <= 2010; i++ {
		s.AddMark(i, i)
	}
	require.Equal(t, []wire.Mark{{Seq: 2010, Out: 100, In: 2010}}, sendAll(s), "checkpoints between two flushes: the newest once")
	require.Equal(t, 1, s.Marks())
	require.NoError(t, s.Resume(wire.Positions{Received: 100, Limit: 1 << 20, Release: 100}))
	require.Equal(t, []wire.Mark{{Seq: 2010, Out: 100, In: 2010}}, sendAll(s), "one mark again, the newest")
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
