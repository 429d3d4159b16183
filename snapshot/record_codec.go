package snapshot

import (
	"bytes"
	"encoding/binary"
)

// A member encodes a checkpoint for every copy to a replica and every
// handover, and decodes one for every copy it keeps and every session it
// takes: thousands a second while a member drains, where msgpack's
// reflection took a twentieth of the CPU. A Record encodes itself, byte for
// byte as msgpack.Marshal makes of it (a map keyed by the field tags, in
// field order, integers at their full width); decoding takes that layout
// directly and leaves any other (a peer's encoder may differ: shorter
// integers, fields in another order) to msgpack, which reads both alike.

// Field keys and the type bytes before each fixed-size value, as msgpack
// writes them.
var (
	prefixID     = []byte{0x89, 0xa2, 'i', 'd', 0xc4, 16}
	prefixEpoch  = []byte{0xa1, 'e', 0xcf}
	prefixSeq    = []byte{0xa1, 's', 0xcf}
	prefixSecret = []byte{0xa1, 'k', 0xc4, 32}
	prefixIn     = []byte{0xa2, 'i', 'n', 0xcf}
	prefixOut    = []byte{0xa3, 'o', 'u', 't', 0xcf}
	prefixState  = []byte{0xa2, 's', 't'}
	prefixParams = []byte{0x84, 0xa1, 'w', 0xce} // after the "p" key
	keyParams    = []byte{0xa1, 'p'}
	prefixR      = []byte{0xa1, 'r', 0xce}
	prefixK      = []byte{0xa1, 'k', 0xcd}
	prefixT      = []byte{0xa1, 't', 0xcd}
	keyOrigin    = []byte{0xa1, 'o'}
)

// encodedSize bounds the length of r's encoding, version byte included.
func (r *Record) encodedSize() int { return 160 + len(r.State) + len(r.Origin) }

// appendMsgpack appends r, msgpack-encoded, to b.
func (r *Record) appendMsgpack(b []byte) []byte {
	b = append(append(b, prefixID...), r.Session[:]...)
	b = binary.BigEndian.AppendUint64(append(b, prefixEpoch...), r.Epoch)
	b = binary.BigEndian.AppendUint64(append(b, prefixSeq...), r.Seq)
	b = append(append(b, prefixSecret...), r.Secret[:]...)
	b = binary.BigEndian.AppendUint64(append(b, prefixIn...), r.InPos)
	b = binary.BigEndian.AppendUint64(append(b, prefixOut...), r.OutPos)
	b = append(b, prefixState...)
	switch n := len(r.State); {
	case r.State == nil:
		b = append(b, 0xc0)
	case n < 1<<8:
		b = append(b, 0xc4, byte(n))
	case n < 1<<16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	b = append(b, r.State...)
	b = append(b, keyParams...)
	b = binary.BigEndian.AppendUint32(append(b, prefixParams...), r.Params.ClientWindow)
	b = binary.BigEndian.AppendUint32(append(b, prefixR...), r.Params.ClientRetention)
	b = binary.BigEndian.AppendUint16(append(b, prefixK...), r.Params.KeepAliveMillis)
	b = binary.BigEndian.AppendUint16(append(b, prefixT...), r.Params.KeepAliveTimeoutMillis)
	b = append(b, keyOrigin...)
	switch n := len(r.Origin); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 1<<8:
		b = append(b, 0xd9, byte(n))
	case n < 1<<16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, r.Origin...)
}

// decodeCanonical decodes into r the layout appendMsgpack makes, and
// reports whether b is exactly that: if not, r is to be decoded otherwise.
func decodeCanonical(b []byte, r *Record) bool {
	d := canonical{b: b, ok: true}
	d.expect(prefixID)
	copy(r.Session[:], d.take(16))
	r.Epoch = d.fixed(prefixEpoch, 8)
	r.Seq = d.fixed(prefixSeq, 8)
	d.expect(prefixSecret)
	copy(r.Secret[:], d.take(32))
	r.InPos = d.fixed(prefixIn, 8)
	r.OutPos = d.fixed(prefixOut, 8)
	d.expect(prefixState)
	if d.next(0xc0) {
		r.State = nil
	} else if n := d.length(0xc4, 0xc5, 0xc6); d.ok {
		if p := d.take(n); d.ok {
			r.State = append(make([]byte, 0, n), p...)
		}
	}
	d.expect(keyParams)
	r.Params.ClientWindow = uint32(d.fixed(prefixParams, 4))
	r.Params.ClientRetention = uint32(d.fixed(prefixR, 4))
	r.Params.KeepAliveMillis = uint16(d.fixed(prefixK, 2))
	r.Params.KeepAliveTimeoutMillis = uint16(d.fixed(prefixT, 2))
	d.expect(keyOrigin)
	if d.ok && len(d.b) > 0 && d.b[0]&0xe0 == 0xa0 { // fixstr
		n := int(d.b[0] & 0x1f)
		d.b = d.b[1:]
		r.Origin = string(d.take(n))
	} else if n := d.length(0xd9, 0xda, 0xdb); d.ok {
		r.Origin = string(d.take(n))
	}
	return d.ok && len(d.b) == 0
}

// canonical reads a known layout: once a byte is out of place or missing,
// ok is false and every later read gives nothing.
type canonical struct {
	b  []byte
	ok bool
}

func (d *canonical) fail() { d.ok, d.b = false, nil }

// expect reads the bytes p.
func (d *canonical) expect(p []byte) {
	if !bytes.HasPrefix(d.b, p) {
		d.fail()
		return
	}
	d.b = d.b[len(p):]
}

// next reads the byte c if it comes next, and reports whether it did.
func (d *canonical) next(c byte) bool {
	if len(d.b) == 0 || d.b[0] != c {
		return false
	}
	d.b = d.b[1:]
	return true
}

// take reads n bytes.
func (d *canonical) take(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail()
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// fixed reads a big-endian value of size bytes (2, 4 or 8) after prefix p.
func (d *canonical) fixed(p []byte, size int) uint64 {
	d.expect(p)
	v := d.take(size)
	switch len(v) {
	case 2:
		return uint64(binary.BigEndian.Uint16(v))
	case 4:
		return uint64(binary.BigEndian.Uint32(v))
	case 8:
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// length reads a header of type byte c8, c16 or c32, with a length of 1, 2
// or 4 bytes after it.
func (d *canonical) length(c8, c16, c32 byte) int {
	var size int
	switch {
	case d.next(c8):
		size = 1
	case d.next(c16):
		size = 2
	case d.next(c32):
		size = 4
	default:
		d.fail()
		return 0
	}
	v := d.take(size)
	switch len(v) {
	case 1:
		return int(v[0])
	case 2:
		return int(binary.BigEndian.Uint16(v))
	case 4:
		return int(binary.BigEndian.Uint32(v))
	}
	return 0
}
