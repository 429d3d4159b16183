package snapshot

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/msgpackcheck"
)

func sample() *Record {
	r := &Record{Epoch: 2, Seq: 7, InPos: 100, OutPos: 200, State: []byte("state"),
		Params: Params{ClientWindow: 1 << 20, ClientRetention: 1 << 21, KeepAliveMillis: 1000, KeepAliveTimeoutMillis: 4000},
		Origin: "node-a"}
	copy(r.Session[:], "0123456789abcdef")
	r.Secret[0] = 9
	return r
}

func TestRoundTrip(t *testing.T) {
	r := sample()
	b, err := r.Marshal()
	require.NoError(t, err)
	got, err := Unmarshal(b, 0)
	require.NoError(t, err)
	require.Equal(t, r, got)
}

func TestUnmarshalRejects(t *testing.T) {
	b, err := sample().Marshal()
	require.NoError(t, err)
	_, err = Unmarshal(append([]byte{9}, b[1:]...), 0)
	require.ErrorIs(t, err, ErrMalformed)
	_, err = Unmarshal(b[:len(b)-3], 0)
	require.ErrorIs(t, err, ErrMalformed)
	_, err = Unmarshal(b, 10)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestChoose(t *testing.T) {
	recs := []*Record{
		{Seq: 0, InPos: 0, OutPos: 0},
		{Seq: 1, InPos: 50, OutPos: 40},
		{Seq: 2, InPos: 90, OutPos: 80},
	}
	require.Equal(t, uint64(2), Choose(recs, 80, 0, nil).Seq)
	require.Equal(t, uint64(1), Choose(recs, 79, 0, nil).Seq, "the client lacks output before seq 2's")
	require.Equal(t, uint64(2), Choose(recs, 100, 60, nil).Seq)
	require.Nil(t, Choose(recs, 79, 60, nil), "the client freed input seq 1 needs")
	only40 := func(out uint64) bool { return out == 40 }
	require.Equal(t, uint64(1), Choose(recs, 100, 0, only40).Seq, "only checkpoints the client can check")
	require.Equal(t, uint64(2), Choose(recs, 80, 0, only40).Seq, "a checkpoint at the client's position needs no check")
	newer := &Record{Epoch: 2, Seq: 1, InPos: 50, OutPos: 40}
	require.Same(t, newer, Choose(append(recs, newer), 100, 0, nil), "a newer epoch wins")
}

func TestStoreFencesOldEpochs(t *testing.T) {
	s := NewStore(3, 0)
	r := sample()
	require.NoError(t, s.Put(r))
	newer := r.Clone()
	newer.Epoch, newer.Seq = 3, 1
	require.NoError(t, s.Put(newer))
	require.Len(t, s.Records(r.Session), 1, "a new epoch replaces the old records")
	old := r.Clone()
	old.Seq = 8
	require.ErrorIs(t, s.Put(old), ErrStaleEpoch)
	require.NoError(t, s.Claim(r.Session, 5, "node-b"))
	require.Len(t, s.Records(r.Session), 1, "a claim keeps the newest data known")
	require.ErrorIs(t, s.Put(newer), ErrStaleEpoch, "the old owner is fenced")
	require.ErrorIs(t, s.Claim(r.Session, 5, "node-c"), ErrStaleEpoch, "one owner per epoch")
	require.ErrorIs(t, s.Claim(r.Session, 4, "node-c"), ErrStaleEpoch)
	mine := r.Clone()
	mine.Epoch, mine.Origin, mine.Seq = 5, "node-b", 2
	require.NoError(t, s.Put(mine))
	recs := s.Records(r.Session)
	require.Len(t, recs, 1, "the owner's records supersede the older epoch's")
	require.Equal(t, "node-b", recs[0].Origin)
	require.Equal(t, 1, s.Sweep(time.Now().Add(time.Second)))
	require.Equal(t, 0, s.Len())
}

// putSeqs puts copies of r numbered 1 to last into s.
func putSeqs(t *testing.T, s *Store, r *Record, last uint64) {
	t.Helper()
	for seq := uint64(1); seq <= last; seq++ {
		c := r.Clone()
		c.Seq = seq
		require.NoError(t, s.Put(c))
	}
}

func TestStoreKeepsNewest(t *testing.T) {
	s := NewStore(2, 0)
	r := sample()
	putSeqs(t, s, r, 5)
	recs := s.Records(r.Session)
	require.Len(t, recs, 2)
	require.Equal(t, []uint64{4, 5}, []uint64{recs[0].Seq, recs[1].Seq}, "the newest")
	s.Retain(r.Session, []uint64{5})
	require.Len(t, s.Records(r.Session), 1)
	s.Delete(r.Session)
	require.Equal(t, 0, s.Len())
}

func TestStoreBound(t *testing.T) {
	s := NewStore(2, 10)
	r := sample()
	r.State = bytes.Repeat([]byte("x"), 8)
	require.NoError(t, s.Put(r))
	c := r.Clone()
	c.Seq++
	require.ErrorIs(t, s.Put(c), ErrTooLarge)
}

// FuzzUnmarshal: arbitrary bytes never panic, an accepted record
// re-encodes to a record that decodes equal, and what the direct decoding
// takes, msgpack's reflection decodes alike.
func FuzzUnmarshal(f *testing.F) {
	b, _ := sample().Marshal()
	f.Add(b)
	empty, _ := (&Record{}).Marshal()
	f.Add(empty)
	f.Add([]byte{1, 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := Unmarshal(in, 1<<16)
		if err != nil {
			return
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		r2, err := Unmarshal(b, 1<<17)
		if err != nil {
			t.Fatalf("decoding the re-encoding: %v", err)
		}
		if r2.Seq != r.Seq || !bytes.Equal(r2.State, r.State) || r2.Origin != r.Origin {
			t.Fatalf("round trip changed the record")
		}
		var direct, want Record
		if decodeCanonical(in[1:], &direct) {
			if err := msgpack.Unmarshal(in[1:], &want); err != nil || !reflect.DeepEqual(want, direct) {
				t.Fatalf("direct decoding %+v, reflection %+v (%v)", direct, want, err)
			}
		}
	})
}

// TestUnmarshalRefusesHugeClaims: a record whose headers claim
// gigabytes is refused before the decoder sizes anything by them.
func TestUnmarshalRefusesHugeClaims(t *testing.T) {
	many := append([]byte{Version, 0xdc, 0x30, 0x00}, bytes.Repeat([]byte{0xdb, 0xdb, 0xdb, 0xdb, 0xdb}, 12000)...)
	_, err := Unmarshal(many, 1<<16)
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorIs(t, err, msgpackcheck.ErrMalformed)
}

func TestStoreRetains(t *testing.T) {
	s := NewStore(8, 0)
	r := sample()
	putSeqs(t, s, r, 6)
	s.Retain(r.Session, []uint64{2, 5, 6})
	var seqs []uint64
	for _, rec := range s.Records(r.Session) {
		seqs = append(seqs, rec.Seq)
	}
	require.Equal(t, []uint64{2, 5, 6}, seqs)
}

// TestStoreEndKeepsTheFence: a session that ended keeps fencing the epochs
// up to its last: a member that lost the session while cut off, and comes
// back after it ended, still has its records refused.
func TestStoreEndKeepsTheFence(t *testing.T) {
	s := NewStore(3, 0)
	r := sample() // epoch 2, from node-a
	require.NoError(t, s.Put(r))
	require.NoError(t, s.Claim(r.Session, 3, "node-b"))
	s.End(r.Session, 3, "node-b")
	require.Empty(t, s.Records(r.Session), "the records go")
	require.Equal(t, uint64(3), s.Epoch(r.Session), "the epoch stays")
	stale := r.Clone()
	stale.Seq = 9
	require.ErrorIs(t, s.Put(stale), ErrStaleEpoch, "the cut-off member is fenced")
	late := r.Clone()
	late.Epoch, late.Origin = 3, "node-b"
	require.ErrorIs(t, s.Put(late), ErrStaleEpoch, "a late copy of the ended epoch is not kept")
	require.ErrorIs(t, s.Claim(r.Session, 3, "node-b"), ErrStaleEpoch)

	s.End(r.Session, 2, "node-a")
	require.Equal(t, uint64(3), s.Epoch(r.Session), "an older end changes nothing")
	next := r.Clone()
	next.Epoch, next.Origin = 4, "node-c"
	require.NoError(t, s.Put(next), "a newer epoch is taken")
	require.Len(t, s.Records(r.Session), 1)

	unknown := [16]byte{1}
	s.End(unknown, 5, "node-c")
	fresh := r.Clone()
	fresh.Session, fresh.Epoch = unknown, 5
	require.ErrorIs(t, s.Put(fresh), ErrStaleEpoch, "an end heard first fences too")
	require.Equal(t, 2, s.Sweep(time.Now().Add(time.Second)), "Sweep forgets the fences in time")
	require.Equal(t, 0, s.Len())
}

// TestStoreEndOnlyByTheOwner: only the member that holds a session's epoch
// ends it there: another member's end of that epoch (or an older one)
// leaves the owner's copies alone.
func TestStoreEndOnlyByTheOwner(t *testing.T) {
	s := NewStore(3, 0)
	r := sample()
	r.Epoch, r.Origin = 3, "node-b"
	require.NoError(t, s.Put(r))
	s.End(r.Session, 3, "node-a")
	require.Len(t, s.Records(r.Session), 1, "an end of the owner's epoch by another member")
	s.End(r.Session, 2, "node-a")
	require.Len(t, s.Records(r.Session), 1, "an end of an older epoch")
	s.End(r.Session, 3, "node-b")
	require.Empty(t, s.Records(r.Session), "the owner's end")
}
