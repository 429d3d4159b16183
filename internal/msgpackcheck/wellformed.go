package msgpackcheck

import (
	"errors"
	"fmt"
)

// MaxDepth is how deep WellFormed lets arrays and maps nest. The messages
// of this module nest a few levels; the bound keeps a decoder's recursion
// shallow whatever the input.
const MaxDepth = 32

// ErrMalformed is what WellFormed's errors wrap.
var ErrMalformed = errors.New("not one well-formed msgpack value")

// WellFormed checks that b holds exactly one msgpack value whose every
// declared length (of strings, binaries, extensions, arrays and maps) fits
// in the bytes that follow it, and whose arrays and maps nest at most
// MaxDepth deep. It allocates nothing unless it refuses b; its error then
// says what is wrong and at which byte.
func WellFormed(b []byte) error {
	// open[d] counts the values still to read at depth d; open[0] is
	// the one value b must hold.
	var open [MaxDepth + 1]uint64
	depth := 0
	open[0] = 1
	pos := 0
	for {
		for open[depth] == 0 {
			if depth == 0 {
				if pos != len(b) {
					return fmt.Errorf("%w: %d trailing bytes after the value", ErrMalformed, len(b)-pos)
				}
				return nil
			}
			depth--
		}
		if pos >= len(b) {
			return fmt.Errorf("%w: input ends at byte %d where a value belongs", ErrMalformed, pos)
		}
		at, t := pos, b[pos]
		pos++
		open[depth]--
		l, err := lengthOf(t, b[pos:])
		if err != nil {
			return fmt.Errorf("%w: type %#x at byte %d: %v", ErrMalformed, t, at, err)
		}
		pos += l.header
		left := uint64(len(b) - pos)
		switch {
		case l.size > left:
			return fmt.Errorf("%w: type %#x at byte %d declares %d bytes; %d follow",
				ErrMalformed, t, at, l.size, left)
		case l.count > left: // every value takes a byte at least
			return fmt.Errorf("%w: type %#x at byte %d declares %d values; %d bytes follow",
				ErrMalformed, t, at, l.count, left)
		}
		pos += int(l.size)
		if l.count == 0 {
			continue
		}
		if depth == MaxDepth {
			return fmt.Errorf("%w: containers nest deeper than %d at byte %d", ErrMalformed, MaxDepth, at)
		}
		depth++
		open[depth] = l.count
	}
}

// lengths is what follows a msgpack type byte: header bytes, payload
// bytes and the values inside.
type lengths struct {
	header int
	size   uint64
	count  uint64
}

// fixed holds the payload sizes of the types whose size the type byte
// alone says (fixext types count their type byte); 0 for the others.
var fixed = [256]uint64{
	0xcc: 1, 0xd0: 1, // uint8, int8
	0xcd: 2, 0xd1: 2, 0xd4: 2, // uint16, int16, fixext1
	0xd5: 3,                   // fixext2
	0xca: 4, 0xce: 4, 0xd2: 4, // float32, uint32, int32
	0xd6: 5,                   // fixext4
	0xcb: 8, 0xcf: 8, 0xd3: 8, // float64, uint64, int64
	0xd7: 9,  // fixext8
	0xd8: 17, // fixext16
}

// lengthOf reads the lengths of type t from the bytes after it.
func lengthOf(t byte, rest []byte) (lengths, error) {
	switch {
	case t <= 0x7f, t >= 0xe0, t == 0xc0, t == 0xc2, t == 0xc3: // fixint, nil, bool
		return lengths{}, nil
	case t <= 0x8f: // fixmap
		return lengths{count: 2 * uint64(t&0x0f)}, nil
	case t <= 0x9f: // fixarray
		return lengths{count: uint64(t & 0x0f)}, nil
	case t <= 0xbf: // fixstr
		return lengths{size: uint64(t & 0x1f)}, nil
	}
	if n := fixed[t]; n > 0 {
		return lengths{size: n}, nil
	}
	var k int
	var ext, each uint64 // a type byte after the length; values per element
	switch t {
	case 0xc4, 0xd9: // bin8, str8
		k = 1
	case 0xc5, 0xda: // bin16, str16
		k = 2
	case 0xc6, 0xdb: // bin32, str32
		k = 4
	case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32: a length, then a type byte
		k, ext = 1<<(t-0xc7), 1
	case 0xdc, 0xdd: // array16, array32
		k, each = 2+2*int(t-0xdc), 1
	case 0xde, 0xdf: // map16, map32
		k, each = 2+2*int(t-0xde), 2
	default:
		return lengths{}, errors.New("unused type")
	}
	if len(rest) < k {
		return lengths{}, fmt.Errorf("header of %d bytes cut short", k)
	}
	var n uint64
	for _, c := range rest[:k] {
		n = n<<8 | uint64(c)
	}
	if each > 0 {
		return lengths{header: k, count: each * n}, nil
	}
	return lengths{header: k, size: n + ext}, nil
}
