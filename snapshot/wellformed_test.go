package snapshot

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWellFormedRefusesLengthsTheInputDoesNotBack(t *testing.T) {
	good, err := sample().Marshal()
	require.NoError(t, err)
	require.NoError(t, wellFormed(good[1:]))
	empty, _ := (&Record{}).Marshal()
	require.NoError(t, wellFormed(empty[1:]))

	for name, in := range map[string][]byte{
		"str32 of 3.7 GB":      []byte("\x81\xaa0000000000\xdb\xdd000000"),
		"bin32 past the end":   {0x81, 0xa1, 'x', 0xc6, 0, 0, 0, 9, 1, 2},
		"array32 past the end": {0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3},
		"map16 past the end":   {0xde, 0x00, 0x09, 1, 2},
		"ext32 past the end":   {0xc9, 0, 0, 1, 0, 5},
		"header cut short":     {0xdb, 0, 0},
		"unused type":          {0xc1},
		"trailing bytes":       append(append([]byte(nil), good[1:]...), 0xc0),
		"nothing":              {},
	} {
		require.Error(t, wellFormed(in), name)
	}
	// Thousands of headers that each claim gigabytes: refused at the
	// first, without sizing anything by it.
	many := append([]byte{0xdc, 0x30, 0x00}, bytes.Repeat([]byte{0xdb, 0xdb, 0xdb, 0xdb, 0xdb}, 12000)...)
	require.Error(t, wellFormed(many))
	_, err = Unmarshal(append([]byte{Version}, many...), 1<<16)
	require.True(t, errors.Is(err, ErrMalformed), "%v", err)
}
