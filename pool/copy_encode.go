package pool

import "encoding/binary"

// Checkpoint copies are the requests a member sends most, thousands a
// second while its sessions checkpoint or arrive, each from a goroutine of
// its own: encoded by reflection, each grew its goroutine's stack and took
// a tenth of the member's CPU. A copyRequest encodes itself, as the map
// msgpack would make of it (any member decodes it as before).

// appendMsgpack appends the request, encoded, to b.
func (r copyRequest) appendMsgpack(b []byte) []byte {
	b = append(b, 0x82, 0xa3, 'r', 'e', 'c')
	b = appendMsgpackBin(b, r.Record)
	b = append(b, 0xa4, 'k', 'e', 'e', 'p')
	if r.Keep == nil {
		return append(b, 0xc0)
	}
	b = appendMsgpackArrayLen(b, len(r.Keep))
	for _, v := range r.Keep {
		b = appendMsgpackUint(b, v)
	}
	return b
}

// encodedSize bounds the length of the request, encoded.
func (r copyRequest) encodedSize() int { return 16 + len(r.Record) + 5 + 9*len(r.Keep) }

// appendMsgpackBin appends p as a msgpack bin (nil as nil).
func appendMsgpackBin(b, p []byte) []byte {
	if p == nil {
		return append(b, 0xc0)
	}
	switch n := len(p); {
	case n <= 0xff:
		b = append(b, 0xc4, byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, p...)
}

// appendMsgpackUint appends v as the shortest msgpack unsigned integer.
func appendMsgpackUint(b []byte, v uint64) []byte {
	switch {
	case v < 0x80:
		return append(b, byte(v))
	case v <= 0xff:
		return append(b, 0xcc, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}
