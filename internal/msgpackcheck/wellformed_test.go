package msgpackcheck

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

func TestWellFormedAcceptsWhatMsgpackEncodes(t *testing.T) {
	for _, v := range []any{
		nil, true, false, 0, -1, 127, -33, int64(1) << 40, 1.5, float32(2.5),
		"", "kind", string(bytes.Repeat([]byte("s"), 70000)),
		[]byte{}, bytes.Repeat([]byte{7}, 300),
		[]any{}, []any{1, "a", []any{nil, map[string]any{"k": []byte("v")}}},
		make([]int, 70000), map[string]int{},
		struct {
			A string `msgpack:"a"`
			B []uint64
			C map[int]bool
		}{"x", []uint64{1, 1 << 63}, map[int]bool{-5: true}},
	} {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		require.NoError(t, WellFormed(b), "%x", b)
	}
	for _, ext := range [][]byte{
		{0xd4, 1, 0}, {0xd5, 1, 0, 0}, {0xd6, 1, 0, 0, 0, 0},
		append([]byte{0xd7, 1}, make([]byte, 8)...), append([]byte{0xd8, 1}, make([]byte, 16)...),
		{0xc7, 2, 1, 9, 9}, {0xc8, 0, 1, 1, 9}, {0xc9, 0, 0, 0, 0, 1},
	} {
		require.NoError(t, WellFormed(ext), "%x", ext)
	}
}

func TestWellFormedRefusesLengthsTheInputDoesNotBack(t *testing.T) {
	for name, in := range map[string][]byte{
		"str32 of 3.7 GB":      []byte("\x81\xaa0000000000\xdb\xdd000000"),
		"bin32 past the end":   {0x81, 0xa1, 'x', 0xc6, 0, 0, 0, 9, 1, 2},
		"array32 past the end": {0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3},
		"map16 past the end":   {0xde, 0x00, 0x09, 1, 2},
		"map32 of 2^33 values": {0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2},
		"ext32 past the end":   {0xc9, 0, 0, 1, 0, 5},
		"fixstr past the end":  {0xa5, 'a'},
		"uint64 cut short":     {0xcf, 0, 0},
		"header cut short":     {0xdb, 0, 0},
		"unused type":          {0xc1},
		"trailing bytes":       {0x91, 1, 0xc0},
		"two values":           {1, 2},
		"nothing":              {},
		"nested too deep":      append(bytes.Repeat([]byte{0x91}, MaxDepth+1), 0xc0),
	} {
		err := WellFormed(in)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	require.NoError(t, WellFormed(append(bytes.Repeat([]byte{0x91}, MaxDepth), 0xc0)))
}

// TestWellFormedSaysWhatIsWrong: the error names the type, where it stands
// and what it claims.
func TestWellFormedSaysWhatIsWrong(t *testing.T) {
	err := WellFormed([]byte{0x92, 0xc0, 0xc6, 0xff, 0xff, 0xff, 0xf0, 1})
	require.EqualError(t, err, "not one well-formed msgpack value: type 0xc6 at byte 2 declares 4294967280 bytes; 1 follow")
}

// TestWellFormedHugeClaimsCostNothing: thousands of headers that each claim
// gigabytes are refused at the first, and checking allocates nothing for
// an input it accepts.
func TestWellFormedHugeClaimsCostNothing(t *testing.T) {
	many := append([]byte{0xdc, 0x30, 0x00}, bytes.Repeat([]byte{0xdb, 0xdb, 0xdb, 0xdb, 0xdb}, 12000)...)
	require.ErrorIs(t, WellFormed(many), ErrMalformed)
	good, err := msgpack.Marshal(map[string]any{"l": []any{1, "two", []byte("three")}})
	require.NoError(t, err)
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = WellFormed(good) }))
}
