package snapshot

import "errors"

// errNotWellFormed is why wellFormed refuses an encoding.
var errNotWellFormed = errors.New("not one well-formed msgpack value")

// wellFormed checks that b holds exactly one msgpack value whose every
// declared length (of strings, binaries, extensions, arrays and maps) fits
// in the bytes that follow it. The decoder then never sizes anything by a
// length the input does not back: a record of n bytes costs O(n) memory
// and time, however its headers lie.
func wellFormed(b []byte) error {
	pos, pending := 0, 1 // values still to read
	for pending > 0 {
		if pos >= len(b) {
			return errNotWellFormed
		}
		t := b[pos]
		pos++
		pending--
		var size, count int // bytes of payload to skip, values that follow
		switch {
		case t <= 0x7f, t >= 0xe0, t == 0xc0, t == 0xc2, t == 0xc3:
		case t >= 0x80 && t <= 0x8f:
			count = 2 * int(t&0x0f)
		case t >= 0x90 && t <= 0x9f:
			count = int(t & 0x0f)
		case t >= 0xa0 && t <= 0xbf:
			size = int(t & 0x1f)
		default:
			n, ok := lengthOf(t, b[pos:])
			if !ok {
				return errNotWellFormed
			}
			pos += n.header
			size, count = n.size, n.count
		}
		if size > len(b)-pos || count > len(b)-pos { // every value takes a byte at least
			return errNotWellFormed
		}
		pos += size
		pending += count
	}
	if pos != len(b) {
		return errNotWellFormed
	}
	return nil
}

// lengths is what follows a msgpack type byte: header bytes, payload bytes
// and values.
type lengths struct{ header, size, count int }

// lengthOf reads the lengths of type t (0xc1 to 0xdf) from the bytes after
// it; ok is false for the unused type 0xc1 or a header cut short.
func lengthOf(t byte, rest []byte) (l lengths, ok bool) {
	switch t {
	case 0xcc, 0xd0:
		return lengths{size: 1}, true
	case 0xcd, 0xd1, 0xd4: // fixext1: a type byte and one byte
		return lengths{size: 2}, true
	case 0xd5:
		return lengths{size: 3}, true
	case 0xca, 0xce, 0xd2:
		return lengths{size: 4}, true
	case 0xd6:
		return lengths{size: 5}, true
	case 0xcb, 0xcf, 0xd3:
		return lengths{size: 8}, true
	case 0xd7:
		return lengths{size: 9}, true
	case 0xd8:
		return lengths{size: 17}, true
	}
	var k, ext int
	var values, pairs bool
	switch t {
	case 0xc4, 0xd9: // bin8, str8
		k = 1
	case 0xc5, 0xda:
		k = 2
	case 0xc6, 0xdb:
		k = 4
	case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32: a length, then a type byte
		k, ext = 1<<(t-0xc7), 1
	case 0xdc, 0xdd: // array16, array32
		k, values = 2+2*int(t-0xdc), true
	case 0xde, 0xdf: // map16, map32
		k, pairs = 2+2*int(t-0xde), true
	default:
		return lengths{}, false
	}
	if len(rest) < k {
		return lengths{}, false
	}
	var n uint64
	for _, c := range rest[:k] {
		n = n<<8 | uint64(c)
	}
	if n > uint64(len(rest)) {
		n = uint64(len(rest)) + 1 // more than is there: the caller refuses it
	}
	switch {
	case values:
		return lengths{header: k, count: int(n)}, true
	case pairs:
		return lengths{header: k, count: 2 * int(n)}, true
	}
	return lengths{header: k, size: int(n) + ext}, true
}
