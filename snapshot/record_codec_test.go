package snapshot

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// reflective is the encoding msgpack's reflection makes of r, with the
// version byte: what Marshal must make, byte for byte.
func reflective(t testing.TB, r *Record) []byte {
	t.Helper()
	b, err := msgpack.Marshal(r)
	require.NoError(t, err)
	return append([]byte{Version}, b...)
}

// codecRecords are records at every boundary of the encoding's lengths and
// integer values, and random ones.
func codecRecords() []*Record {
	var out []*Record
	states := [][]byte{nil, {}, []byte("s"), bytes.Repeat([]byte{7}, 255), bytes.Repeat([]byte{8}, 256),
		bytes.Repeat([]byte{9}, 65535), bytes.Repeat([]byte{1}, 65536)}
	origins := []string{"", "m0", strings.Repeat("o", 31), strings.Repeat("p", 32), strings.Repeat("q", 255),
		strings.Repeat("r", 256), strings.Repeat("s", 65535), strings.Repeat("t", 65536)}
	ints := []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64}
	for i, st := range states {
		r := sample()
		r.State = st
		r.Origin = origins[i%len(origins)]
		out = append(out, r)
	}
	for i, o := range origins {
		r := sample()
		r.Origin = o
		r.Epoch = ints[i%len(ints)]
		out = append(out, r)
	}
	for i, v := range ints {
		r := sample()
		r.Epoch, r.Seq, r.InPos, r.OutPos = v, ints[(i+1)%len(ints)], ints[(i+2)%len(ints)], ints[(i+3)%len(ints)]
		r.Params = Params{ClientWindow: uint32(v), ClientRetention: uint32(v >> 3), KeepAliveMillis: uint16(v), KeepAliveTimeoutMillis: uint16(v >> 5)}
		out = append(out, r)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		r := &Record{Epoch: rng.Uint64() >> rng.IntN(64), Seq: rng.Uint64() >> rng.IntN(64),
			InPos: rng.Uint64() >> rng.IntN(64), OutPos: rng.Uint64() >> rng.IntN(64),
			Params: Params{ClientWindow: rng.Uint32(), ClientRetention: rng.Uint32(),
				KeepAliveMillis: uint16(rng.Uint32()), KeepAliveTimeoutMillis: uint16(rng.Uint32())},
			Origin: strings.Repeat("x", rng.IntN(70))}
		for i := range r.Session {
			r.Session[i] = byte(rng.Uint32())
		}
		for i := range r.Secret {
			r.Secret[i] = byte(rng.Uint32())
		}
		if n := rng.IntN(600) - 1; n >= 0 {
			r.State = make([]byte, n)
			for i := range r.State {
				r.State[i] = byte(rng.Uint32())
			}
		}
		out = append(out, r)
	}
	return out
}

// TestMarshalIsTheReflectiveEncoding: Marshal writes exactly what msgpack's
// reflection writes, so members of either kind read each other's records.
func TestMarshalIsTheReflectiveEncoding(t *testing.T) {
	for i, r := range codecRecords() {
		b, err := r.Marshal()
		require.NoError(t, err)
		require.Equal(t, reflective(t, r), b, "record %d", i)
		require.LessOrEqual(t, len(b), r.encodedSize(), "record %d: the size bound", i)
	}
}

// TestUnmarshalIsTheReflectiveDecoding: the direct decoding of the layout
// gives what msgpack's reflection gives, nil and empty state apart.
func TestUnmarshalIsTheReflectiveDecoding(t *testing.T) {
	for i, r := range codecRecords() {
		b := reflective(t, r)
		var direct Record
		require.True(t, decodeCanonical(b[1:], &direct), "record %d: the layout", i)
		var want Record
		require.NoError(t, msgpack.Unmarshal(b[1:], &want))
		require.True(t, reflect.DeepEqual(want, direct), "record %d: %+v, want %+v", i, direct, want)
		got, err := Unmarshal(b, 1<<20)
		if len(r.Origin) > 64 {
			require.ErrorIs(t, err, ErrMalformed, "record %d: a long origin name", i)
			continue
		}
		require.NoError(t, err)
		require.True(t, reflect.DeepEqual(&want, got), "record %d", i)
	}
}

// TestUnmarshalTakesOtherLayouts: a record encoded otherwise (compact
// integers, fields in another order, a field unknown here) decodes as
// msgpack decodes it.
func TestUnmarshalTakesOtherLayouts(t *testing.T) {
	r := sample()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	require.NoError(t, enc.Encode(r))
	require.False(t, decodeCanonical(buf.Bytes(), new(Record)), "compact integers are another layout")
	got, err := Unmarshal(append([]byte{Version}, buf.Bytes()...), 0)
	require.NoError(t, err)
	require.Equal(t, r, got)

	m := map[string]any{"o": r.Origin, "e": r.Epoch, "s": r.Seq, "id": r.Session[:], "k": r.Secret[:],
		"in": r.InPos, "out": r.OutPos, "st": r.State, "extra": 1,
		"p": map[string]any{"t": r.Params.KeepAliveTimeoutMillis, "w": r.Params.ClientWindow,
			"r": r.Params.ClientRetention, "k": r.Params.KeepAliveMillis}}
	b, err := msgpack.Marshal(m)
	require.NoError(t, err)
	got, err = Unmarshal(append([]byte{Version}, b...), 0)
	require.NoError(t, err)
	require.Equal(t, r, got)
}

// TestDecodeCanonicalRefusesEveryCut: the layout cut short anywhere, or
// followed by a byte, is not taken as the layout.
func TestDecodeCanonicalRefusesEveryCut(t *testing.T) {
	b := reflective(t, sample())[1:]
	for n := range len(b) {
		require.False(t, decodeCanonical(b[:n], new(Record)), "cut at %d", n)
	}
	require.False(t, decodeCanonical(append(b[:len(b):len(b)], 0), new(Record)), "a byte after it")
}

func BenchmarkRecordMarshal(b *testing.B) {
	r := sample()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = r.Marshal()
	}
}

func BenchmarkRecordMarshalReflective(b *testing.B) {
	r := sample()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = msgpack.Marshal(r)
	}
}

func BenchmarkRecordUnmarshal(b *testing.B) {
	p, _ := sample().Marshal()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Unmarshal(p, 0)
	}
}
