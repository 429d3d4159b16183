package pool

import (
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/msgpackcheck"
)

func sampleMembers() []Member {
	return []Member{
		{},
		{ClientAddr: "127.0.0.1:7000", ControlAddr: "127.0.0.1:7001"},
		{ClientAddr: "[::1]:443", ControlAddr: "10.0.0.2:9000", Sessions: 12, BytesPerSec: 1 << 20, Draining: true, Boot: 1},
		{ClientAddr: "srv.example:1", Sessions: maxSessions, BytesPerSec: math.MaxUint64, Boot: 0x1234567},
		{ClientAddr: strings.Repeat("h", maxAddrLen-2) + ":1", ControlAddr: strings.Repeat("c", maxAddrLen-6) + ":65535", Boot: math.MaxUint64},
	}
}

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range sampleMembers() {
		b, err := encodeMeta(m)
		require.NoError(t, err)
		require.LessOrEqual(t, len(b), memberlist.MetaMaxSize)
		got, err := decodeMeta(b)
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
}

func TestMetaLargestFitsEasily(t *testing.T) {
	b, err := encodeMeta(sampleMembers()[4])
	require.NoError(t, err)
	require.LessOrEqual(t, len(b), 321)
}

func TestMetaEncodeRejects(t *testing.T) {
	for name, m := range map[string]Member{
		"long address":      {ClientAddr: strings.Repeat("h", maxAddrLen) + ":1"},
		"no port":           {ControlAddr: "127.0.0.1"},
		"negative sessions": {Sessions: -1},
	} {
		_, err := encodeMeta(m)
		require.ErrorIs(t, err, errBadMeta, name)
	}
}

// pack encodes values with msgpack's generic encoder, as another
// implementation might.
func pack(t testing.TB, vs ...any) []byte {
	b, err := msgpack.Marshal(vs)
	require.NoError(t, err)
	return b
}

func TestMetaDecodeAcceptsOtherIntegerEncodings(t *testing.T) {
	b := pack(t, int8(1), "a:1", "b:2", int64(5), int32(7), false)
	m, err := decodeMeta(b)
	require.NoError(t, err)
	require.Equal(t, Member{ClientAddr: "a:1", ControlAddr: "b:2", Sessions: 5, BytesPerSec: 7}, m)
}

func TestMetaDecodeSkipsFieldsOfLaterVersions(t *testing.T) {
	b := pack(t, 3, "a:1", "b:2", 3, 4, true, 99, "new", []any{1, "x", map[string]int{"k": 1}}, 1.5, nil, []byte{1, 2})
	m, err := decodeMeta(b)
	require.NoError(t, err)
	require.Equal(t, Member{ClientAddr: "a:1", ControlAddr: "b:2", Sessions: 3, BytesPerSec: 4, Draining: true, Boot: 99}, m)
}

// TestMetaDecodesVersion1: a member of an earlier release publishes no
// boot number.
func TestMetaDecodesVersion1(t *testing.T) {
	m, err := decodeMeta(pack(t, 1, "a:1", "b:2", 3, 4, true))
	require.NoError(t, err)
	require.Equal(t, Member{ClientAddr: "a:1", ControlAddr: "b:2", Sessions: 3, BytesPerSec: 4, Draining: true}, m)
}

func TestMetaDecodeRejects(t *testing.T) {
	valid, err := encodeMeta(sampleMembers()[2])
	require.NoError(t, err)
	deep := any(1)
	for range maxSkipDepth + 2 {
		deep = []any{deep}
	}
	cases := map[string][]byte{
		"empty":              nil,
		"oversize":           make([]byte, memberlist.MetaMaxSize+1),
		"not an array":       pack(t, "x")[1:],
		"nil array":          {0xc0},
		"empty array":        {0x90},
		"version 0":          pack(t, 0, "a:1", "b:2", 0, 0, false),
		"negative version":   pack(t, -1, "a:1", "b:2", 0, 0, false),
		"v1 extra field":     pack(t, 1, "a:1", "b:2", 0, 0, false, 9),
		"v1 missing field":   pack(t, 1, "a:1", "b:2", 0, 0),
		"v2 missing field":   pack(t, 2, "a:1", "b:2", 0, 0),
		"v2 without boot":    pack(t, 2, "a:1", "b:2", 0, 0, false),
		"v2 extra field":     pack(t, 2, "a:1", "b:2", 0, 0, false, 1, 9),
		"v3 without boot":    pack(t, 3, "a:1", "b:2", 0, 0, false),
		"string boot":        pack(t, 2, "a:1", "b:2", 0, 0, false, "1"),
		"negative boot":      pack(t, 2, "a:1", "b:2", 0, 0, false, -1),
		"nil address":        pack(t, 1, nil, "b:2", 0, 0, false),
		"binary address":     pack(t, 1, []byte("a:1"), "b:2", 0, 0, false),
		"address no port":    pack(t, 1, "a", "b:2", 0, 0, false),
		"address not utf8":   pack(t, 1, "\xff:1", "b:2", 0, 0, false),
		"long address":       pack(t, 1, strings.Repeat("a", maxAddrLen)+":1", "", 0, 0, false),
		"nil sessions":       pack(t, 1, "a:1", "b:2", nil, 0, false),
		"negative sessions":  pack(t, 1, "a:1", "b:2", -3, 0, false),
		"huge sessions":      pack(t, 1, "a:1", "b:2", uint64(maxSessions)+1, 0, false),
		"float bytes":        pack(t, 1, "a:1", "b:2", 0, 1.0, false),
		"negative bytes":     pack(t, 1, "a:1", "b:2", 0, int64(-1), false),
		"int draining":       pack(t, 1, "a:1", "b:2", 0, 0, 1),
		"nil draining":       pack(t, 1, "a:1", "b:2", 0, 0, nil),
		"trailing bytes":     append(append([]byte{}, valid...), 0),
		"truncated":          valid[:len(valid)-1],
		"string past end":    {0x96, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff},
		"array past end":     {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01},
		"skip nested deeply": pack(t, 3, "a:1", "b:2", 0, 0, false, 1, deep),
		"skip extension":     {0x97, 0x02, 0xa3, 'a', ':', '1', 0xa0, 0, 0, 0xc2, 0xd4, 1, 1},
		"skip past end":      {0x97, 0x02, 0xa0, 0xa0, 0, 0, 0xc2, 0xc6, 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range cases {
		_, err := decodeMeta(b)
		require.ErrorIs(t, err, errBadMeta, name)
	}
}

// TestMetaDecodeRefusesHugeClaimsCheaply: metadata whose headers claim
// gigabytes is refused with an error saying so, allocating only that
// error.
func TestMetaDecodeRefusesHugeClaimsCheaply(t *testing.T) {
	for _, b := range [][]byte{
		{0x96, 0x01, 0xdb, 0xdd, 0, 0, 0, 'a', ':', '1'},
		{0xdd, 0x7f, 0xff, 0xff, 0xff, 0x01, 0xa0},
		{0x97, 0x02, 0xa0, 0xa0, 0, 0, 0xc2, 0xdf, 0xff, 0xff, 0xff, 0xff, 1},
	} {
		_, err := decodeMeta(b)
		require.ErrorIs(t, err, errBadMeta)
		require.ErrorIs(t, err, msgpackcheck.ErrMalformed)
		require.ErrorContains(t, err, "declares")
		require.LessOrEqual(t, leastAllocated(func() { _, _ = decodeMeta(b) }), uint64(4<<10))
	}
}

// leastAllocated returns the fewest bytes allocated while f runs, of three
// runs: the process's other goroutines (pools of other tests winding down)
// allocate meanwhile too, but seldom during all three.
func leastAllocated(f func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// FuzzMetaDecode checks that the metadata decoder never panics nor
// allocates more than a few kilobytes, and that whatever it accepts
// encodes again to metadata that decodes to the same Member.
func FuzzMetaDecode(f *testing.F) {
	for _, m := range sampleMembers() {
		b, err := encodeMeta(m)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add(pack(f, 2, "a:1", "b:2", 3, 4, true, "new", []any{1, "x"}, map[string]int{"k": 1}))
	f.Add(pack(f, int8(1), "a:1", "b:2", int64(5), int32(7), false))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n := leastAllocated(func() { _, _ = decodeMeta(b) }); n > 64<<10 {
			t.Fatalf("decoding %d bytes of metadata allocated %d bytes", len(b), n)
		}
		m, err := decodeMeta(b)
		if err != nil {
			require.ErrorIs(t, err, errBadMeta)
			return
		}
		again, err := encodeMeta(m)
		require.NoError(t, err)
		m2, err := decodeMeta(again)
		require.NoError(t, err)
		require.Equal(t, m, m2)
		again2, err := encodeMeta(m2)
		require.NoError(t, err)
		require.Equal(t, again, again2)
	})
}
