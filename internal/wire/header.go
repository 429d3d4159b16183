package wire

import "encoding/binary"

// Header is the fixed 8-byte prefix of every frame.
type Header struct {
	Type   Type
	Flags  uint8
	Length uint32 // body bytes that follow the header
}

// Flag bits.
const (
	FlagFinSeen uint8 = 0x01 // ACK: the peer's FIN or CLOSE has been received
)

// bodyBounds gives the allowed body sizes and flag bits of each known type.
// A zero entry (max 0) is a type that is not defined. Every defined type has
// a positive maximum.
type bodyBounds struct {
	min, max uint32
	flags    uint8
}

// bounds is indexed by type, below FirstExtension (an array, not a map: it
// is looked up for every frame).
var bounds = [FirstExtension]bodyBounds{
	TypeData:      {min: 9, max: 8 + MaxPayload},
	TypeAck:       {min: 16, max: 16, flags: FlagFinSeen},
	TypePing:      {min: 8, max: 8},
	TypePong:      {min: 8, max: 8},
	TypeFin:       {min: 8, max: 8},
	TypeClose:     {min: 8, max: 8},
	TypeAbort:     {min: 2, max: 2 + MaxReason},
	TypeMembers:   {min: 2, max: maxMembersBody},
	TypeMove:      {min: 3, max: 3 + MaxNameLen + MaxAddrLen},
	TypeMark:      {min: markLen, max: markLen},
	TypeVerify:    {min: verifyLen, max: verifyLen},
	TypeHello:     {min: helloNewLen, max: helloResumeMaxLen},
	TypeWelcome:   {min: welcomeMinLen, max: welcomeMaxLen},
	TypeChallenge: {min: NonceLen, max: NonceLen},
	TypeProof:     {min: proofMinLen, max: proofMaxLen},
	TypeResumed:   {min: resumedMinLen, max: resumedMaxLen},
	TypeRefused:   {min: refusedMinLen, max: refusedMaxLen},
}

// ParseHeader decodes and validates a frame header: known type (or extension),
// no undefined flags, zero reserved bits, and a body length within the type's
// bounds. A header that passes costs at most the type's maximum body to read.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, malformed("short header (%d bytes)", len(b))
	}
	h := Header{Type: Type(b[0]), Flags: b[1], Length: binary.BigEndian.Uint32(b[4:8])}
	if b[2] != 0 || b[3] != 0 {
		return Header{}, malformed("%v: reserved header bits set", h.Type)
	}
	if h.Type.IsExtension() {
		if h.Length > MaxExtensionBody {
			return Header{}, malformed("%v: body of %d bytes exceeds %d", h.Type, h.Length, MaxExtensionBody)
		}
		return h, nil
	}
	bb := bounds[h.Type]
	if bb.max == 0 {
		return Header{}, malformed("unknown frame type 0x%02x", uint8(h.Type))
	}
	if h.Flags&^bb.flags != 0 {
		return Header{}, malformed("%v: undefined flags 0x%02x", h.Type, h.Flags&^bb.flags)
	}
	if h.Length < bb.min || h.Length > bb.max {
		return Header{}, malformed("%v: body of %d bytes outside [%d, %d]", h.Type, h.Length, bb.min, bb.max)
	}
	return h, nil
}

// AppendHeader appends the encoding of h to b.
func AppendHeader(b []byte, h Header) []byte {
	return append(b, byte(h.Type), h.Flags, 0, 0,
		byte(h.Length>>24), byte(h.Length>>16), byte(h.Length>>8), byte(h.Length))
}

// PutDataHeader writes a DATA frame header and its seq field (16 bytes) into b
// for a payload of n bytes. It is the hot path's allocation-free encoder.
func PutDataHeader(b *[16]byte, seq uint64, n int) {
	b[0], b[1], b[2], b[3] = byte(TypeData), 0, 0, 0
	binary.BigEndian.PutUint32(b[4:8], uint32(8+n))
	binary.BigEndian.PutUint64(b[8:16], seq)
}
