package stream

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/migratory/mtcp/internal/wire"
)

var testCfg = Config{Window: 4096, Retention: 8192, PeerRetention: 8192}

// deliver copies one DATA frame into s as a link reader would.
func deliver(t *testing.T, s *Stream, seq uint64, payload []byte) {
	t.Helper()
	skip, err := s.BeginData(seq, len(payload))
	require.NoError(t, err)
	rest := payload[skip:]
	a, b := s.Reserve(len(rest))
	copy(b, rest[copy(a, rest):])
	s.Commit(len(rest))
}

type frame struct {
	seq  uint64
	data []byte
	ack  *wire.Ack
	end  End
	pos  uint64
}

// TestSimulatedLinkBreaks drives two Streams over a link that loses every
// frame in flight when it breaks, resuming after each break, and checks that
// each side reads exactly what the other wrote.
func TestSimulatedLinkBreaks(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		a, b := New(testCfg, 4096), New(testCfg, 4096)
		var wantAB, wantBA, gotAB, gotBA []byte
		var toB, toA []frame
		var next byte
		send := func(s *Stream, q *[]frame) {
			if _, dirty := s.AckDue(); dirty && rng.IntN(2) == 0 {
				ack := s.MakeAck()
				*q = append(*q, frame{ack: &ack})
			}
			seq, p1, p2 := s.nextData(1 + rng.IntN(3000))
			if len(p1) > 0 {
				*q = append(*q, frame{seq: seq, data: append(append([]byte{}, p1...), p2...)})
			}
			if kind, pos, ok := s.NextEnd(); ok {
				*q = append(*q, frame{end: kind, pos: pos})
			}
		}
		recv := func(s *Stream, q *[]frame) {
			n := rng.IntN(len(*q) + 1)
			for _, f := range (*q)[:n] {
				switch {
				case f.ack != nil:
					require.NoError(t, s.OnAck(*f.ack))
				case f.end != Open:
					require.NoError(t, s.OnEnd(f.end, f.pos))
				default:
					deliver(t, s, f.seq, f.data)
				}
			}
			*q = (*q)[n:]
		}
		write := func(s *Stream, want *[]byte) {
			p := make([]byte, rng.IntN(5000))
			for i := range p {
				p[i] = next
				next++
			}
			n, err := s.Write(p)
			require.NoError(t, err)
			*want = append(*want, p[:n]...)
		}
		read := func(s *Stream, got *[]byte) {
			p := make([]byte, rng.IntN(5000))
			n, _ := s.Read(p)
			*got = append(*got, p[:n]...)
		}
		for step := 0; step < 3000; step++ {
			switch rng.IntN(9) {
			case 0:
				write(a, &wantAB)
			case 1:
				write(b, &wantBA)
			case 2:
				send(a, &toB)
			case 3:
				send(b, &toA)
			case 4:
				recv(b, &toB)
			case 5:
				recv(a, &toA)
			case 6:
				read(b, &gotAB)
			case 7:
				read(a, &gotBA)
			case 8:
				if rng.IntN(10) == 0 { // the link breaks
					toA, toB = nil, nil
					pa, pb := a.Positions(), b.Positions()
					require.NoError(t, a.Resume(pb))
					require.NoError(t, b.Resume(pa))
				}
			}
		}
		// Half-close both and drain without further breaks.
		a.EndOutput(HalfClosed)
		b.EndOutput(HalfClosed)
		for i := 0; i < 10_000 && !(a.OutputDone() && b.OutputDone()); i++ {
			send(a, &toB)
			send(b, &toA)
			for len(toB) > 0 || len(toA) > 0 {
				recv(b, &toB)
				recv(a, &toA)
			}
			read(b, &gotAB)
			read(a, &gotBA)
			if ack := a.MakeAck(); true {
				require.NoError(t, b.OnAck(ack))
			}
			require.NoError(t, a.OnAck(b.MakeAck()))
		}
		require.True(t, a.OutputDone() && b.OutputDone(), "seed %d: streams did not finish", seed)
		drain := func(s *Stream, got *[]byte) {
			p := make([]byte, 1000)
			for s.Buffered() > 0 {
				n, _ := s.Read(p)
				*got = append(*got, p[:n]...)
			}
		}
		drain(a, &gotBA)
		drain(b, &gotAB)
		require.True(t, bytes.Equal(wantAB, gotAB), "seed %d: A->B differs (%d vs %d bytes)", seed, len(wantAB), len(gotAB))
		require.True(t, bytes.Equal(wantBA, gotBA), "seed %d: B->A differs", seed)
		n, err := b.Read(make([]byte, 10))
		require.Equal(t, 0, n)
		require.ErrorIs(t, err, io.EOF)
	}
}

func TestWindowIsEnforced(t *testing.T) {
	a, b := New(testCfg, 4096), New(testCfg, 4096)
	_, err := a.Write(make([]byte, 8192))
	require.NoError(t, err)
	seq, p1, p2 := a.nextData(100_000)
	require.Equal(t, 4096, len(p1)+len(p2), "sender stops at the peer's window")
	deliver(t, b, seq, append(p1, p2...))
	_, err = b.BeginData(4096, 1)
	require.ErrorIs(t, err, ErrProtocol, "a byte past the advertised limit is refused")
	_, err = b.BeginData(5000, 1)
	require.ErrorIs(t, err, ErrProtocol, "a gap is refused")
	skip, err := b.BeginData(0, 10)
	require.NoError(t, err)
	require.Equal(t, 10, skip, "a retransmission of received bytes is dropped")
}

func TestRetentionPushesBack(t *testing.T) {
	a := New(testCfg, 1<<30)
	n, err := a.Write(make([]byte, 10_000))
	require.NoError(t, err)
	require.Equal(t, 8192, n)
	require.Equal(t, 0, a.WriteSpace())
	a.nextData(1 << 20)
	require.NoError(t, a.OnAck(wire.Ack{Limit: 1 << 30, Release: 1000}))
	require.Equal(t, 1000, a.WriteSpace())
}

func TestResumeOutsideRetention(t *testing.T) {
	a := New(testCfg, 1<<30)
	_, _ = a.Write(make([]byte, 5000))
	a.nextData(1 << 20)
	require.NoError(t, a.OnAck(wire.Ack{Limit: 1 << 30, Release: 3000}))
	err := a.Resume(wire.Positions{Received: 2000, Limit: 1 << 30, Release: 2000})
	require.ErrorIs(t, err, ErrNotRetained)
	err = a.Resume(wire.Positions{Received: 6000, Limit: 1 << 30, Release: 3000})
	require.ErrorIs(t, err, ErrNotRetained)
	require.NoError(t, a.Resume(wire.Positions{Received: 3500, Limit: 1 << 30, Release: 3000}))
	seq, p1, _ := a.nextData(1 << 20)
	require.Equal(t, uint64(3500), seq)
	require.Len(t, p1, 1500)
}

func TestAckRules(t *testing.T) {
	a := New(testCfg, 4096)
	_, _ = a.Write(make([]byte, 100))
	a.nextData(50)
	require.ErrorIs(t, a.OnAck(wire.Ack{Limit: 4096, Release: 60}), ErrProtocol, "release past sent")
	require.ErrorIs(t, a.OnAck(wire.Ack{Limit: 10, Release: 0}), ErrProtocol, "limit going back")
	require.ErrorIs(t, a.OnAck(wire.Ack{Limit: 4096, FinSeen: true}), ErrProtocol, "FIN seen before sent")
	_, err := a.Write(nil)
	require.NoError(t, err)
	a.EndOutput(HalfClosed)
	_, err = a.Write([]byte("x"))
	require.True(t, errors.Is(err, ErrWriteAfterEnd))
}

func TestManualRelease(t *testing.T) {
	cfg := testCfg
	cfg.ManualRelease = true
	b := New(cfg, 4096)
	deliver(t, b, 0, make([]byte, 1000))
	require.Equal(t, uint64(0), b.Release(), "nothing released until told")
	require.NoError(t, b.SetRelease(400))
	require.ErrorIs(t, b.SetRelease(2000), ErrProtocol)
	require.Equal(t, uint64(400), b.MakeAck().Release)
}

func TestPeerCloseStopsOutput(t *testing.T) {
	a, b := New(testCfg, 4096), New(testCfg, 4096)
	_, _ = b.Write(make([]byte, 100))
	a.EndOutput(Closed)
	kind, pos, ok := a.NextEnd()
	require.True(t, ok)
	require.NoError(t, b.OnEnd(kind, pos))
	require.False(t, b.CanSend(), "nothing is sent to a peer that reads no more")
	_, p1, _ := b.nextData(1000)
	require.Empty(t, p1)
	n, err := b.Read(make([]byte, 10))
	require.Equal(t, 0, n)
	require.ErrorIs(t, err, io.EOF)
}

func TestCloseAfterFinIsAcknowledged(t *testing.T) {
	b := New(testCfg, 4096)
	require.NoError(t, b.OnEnd(HalfClosed, 0))
	ack := b.MakeAck()
	require.True(t, ack.FinSeen)
	_, dirty := b.AckDue()
	require.False(t, dirty)
	require.NoError(t, b.OnEnd(Closed, 0)) // the peer closes after its FIN was seen
	urgent, _ := b.AckDue()
	require.True(t, urgent, "the CLOSE must be acknowledged too")
	require.False(t, b.PeerEndTold())
	b.MakeAck()
	require.True(t, b.PeerEndTold())
}
