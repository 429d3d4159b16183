package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// Frame is any decoded frame.
type Frame interface {
	// Type is the frame's type.
	Type() Type
	header() Header
	appendBody(b []byte) []byte
}

// Data carries stream bytes starting at position Seq.
type Data struct {
	Seq     uint64
	Payload []byte
}

// Ack moves the peer's flow-control limit and retention release point.
type Ack struct {
	Limit   uint64
	Release uint64
	FinSeen bool
}

// Ping asks for a Pong with the same Opaque value.
type Ping struct{ Opaque uint64 }

// Pong answers a Ping.
type Pong struct{ Opaque uint64 }

// Fin half-closes the sender's stream at End.
type Fin struct{ End uint64 }

// Close ends the sender's stream at End and says it reads no more.
type Close struct{ End uint64 }

// Abort fails the session.
type Abort struct {
	Code   Code
	Reason string
}

// Refused rejects a handshake. A refusal because the session moved names
// the member that has it now (RedirectName, RedirectAddr).
type Refused struct {
	Code         Code
	Reason       string
	RedirectName string
	RedirectAddr string
}

const (
	refusedMinLen = 2 + 2 + 1 + 1
	refusedMaxLen = refusedMinLen + MaxReason + MaxNameLen + MaxAddrLen
)

// Extension is a frame of a type >= 0x80, carried opaquely.
type Extension struct {
	Kind  Type
	Flags uint8
	Body  []byte
}

// Type returns TypeData.
func (Data) Type() Type { return TypeData }

// Type returns TypeAck.
func (Ack) Type() Type { return TypeAck }

// Type returns TypePing.
func (Ping) Type() Type { return TypePing }

// Type returns TypePong.
func (Pong) Type() Type { return TypePong }

// Type returns TypeFin.
func (Fin) Type() Type { return TypeFin }

// Type returns TypeClose.
func (Close) Type() Type { return TypeClose }

// Type returns TypeAbort.
func (Abort) Type() Type { return TypeAbort }

// Type returns TypeRefused.
func (Refused) Type() Type { return TypeRefused }

// Type returns the frame type the extension carries.
func (e Extension) Type() Type { return e.Kind }

func (f Data) header() Header { return Header{Type: TypeData, Length: uint32(8 + len(f.Payload))} }
func (f Ack) header() Header {
	h := Header{Type: TypeAck, Length: 16}
	if f.FinSeen {
		h.Flags = FlagFinSeen
	}
	return h
}
func (Ping) header() Header  { return Header{Type: TypePing, Length: 8} }
func (Pong) header() Header  { return Header{Type: TypePong, Length: 8} }
func (Fin) header() Header   { return Header{Type: TypeFin, Length: 8} }
func (Close) header() Header { return Header{Type: TypeClose, Length: 8} }
func (f Abort) header() Header {
	return Header{Type: TypeAbort, Length: uint32(2 + len(TruncateReason(f.Reason)))}
}
func (f Refused) header() Header {
	return Header{Type: TypeRefused, Length: uint32(len(f.appendBody(nil)))}
}
func (f Extension) header() Header {
	return Header{Type: f.Kind, Flags: f.Flags, Length: uint32(len(f.Body))}
}

func (f Data) appendBody(b []byte) []byte {
	return append(binary.BigEndian.AppendUint64(b, f.Seq), f.Payload...)
}
func (f Ack) appendBody(b []byte) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(b, f.Limit), f.Release)
}
func (f Ping) appendBody(b []byte) []byte  { return binary.BigEndian.AppendUint64(b, f.Opaque) }
func (f Pong) appendBody(b []byte) []byte  { return binary.BigEndian.AppendUint64(b, f.Opaque) }
func (f Fin) appendBody(b []byte) []byte   { return binary.BigEndian.AppendUint64(b, f.End) }
func (f Close) appendBody(b []byte) []byte { return binary.BigEndian.AppendUint64(b, f.End) }
func (f Abort) appendBody(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(f.Code)), TruncateReason(f.Reason)...)
}
func (f Refused) appendBody(b []byte) []byte {
	r := TruncateReason(f.Reason)
	b = binary.BigEndian.AppendUint16(b, uint16(f.Code))
	b = binary.BigEndian.AppendUint16(b, uint16(len(r)))
	b = append(b, r...)
	b = appendStr8(b, f.RedirectName, MaxNameLen)
	return appendStr8(b, f.RedirectAddr, MaxAddrLen)
}

func parseRefused(body []byte) (Refused, error) {
	f := Refused{Code: Code(binary.BigEndian.Uint16(body))}
	n := int(binary.BigEndian.Uint16(body[2:]))
	if n > MaxReason || len(body) < 4+n {
		return f, malformed("REFUSED: reason of %d bytes", n)
	}
	r := body[4 : 4+n]
	if !utf8.Valid(r) {
		return f, malformed("REFUSED: reason is not UTF-8")
	}
	f.Reason = string(r)
	var err error
	rest := body[4+n:]
	if f.RedirectName, rest, err = parseStr8(rest, MaxNameLen, "REFUSED redirect name"); err != nil {
		return f, err
	}
	f.RedirectAddr, err = parseLastStr8(rest, MaxAddrLen, "REFUSED", "redirect address")
	return f, err
}
func (f Extension) appendBody(b []byte) []byte { return append(b, f.Body...) }

// AppendFrame appends the encoding of f (header and body) to b. It is
// generic so that encoding a concrete frame (an ACK per batch) does not box
// it into a Frame on the heap.
func AppendFrame[F Frame](b []byte, f F) []byte {
	return f.appendBody(AppendHeader(b, f.header()))
}

// Decode decodes the body of a frame whose header h passed ParseHeader. The
// returned frame may alias body (Data.Payload, Extension.Body).
func Decode(h Header, body []byte) (Frame, error) {
	if uint32(len(body)) != h.Length {
		return nil, malformed("%v: body is %d bytes, header says %d", h.Type, len(body), h.Length)
	}
	if h.Type.IsExtension() {
		return Extension{Kind: h.Type, Flags: h.Flags, Body: body}, nil
	}
	switch h.Type {
	case TypeData:
		return Data{Seq: binary.BigEndian.Uint64(body), Payload: body[8:]}, nil
	case TypeAck:
		return ParseAck(h, body), nil
	case TypePing:
		return Ping{Opaque: binary.BigEndian.Uint64(body)}, nil
	case TypePong:
		return Pong{Opaque: binary.BigEndian.Uint64(body)}, nil
	case TypeFin:
		return Fin{End: binary.BigEndian.Uint64(body)}, nil
	case TypeClose:
		return Close{End: binary.BigEndian.Uint64(body)}, nil
	case TypeAbort:
		c, r, err := parseCodeReason(h.Type, body)
		return Abort{Code: c, Reason: r}, err
	case TypeRefused:
		return parseRefused(body)
	case TypeMembers:
		return parseMembers(body)
	case TypeMove:
		return parseMove(body)
	case TypeMark:
		return ParseMark(body), nil
	case TypeVerify:
		return ParseVerify(body)
	case TypeHello:
		return ParseHello(body)
	case TypeWelcome:
		return ParseWelcome(body)
	case TypeChallenge:
		var c Challenge
		copy(c.Nonce[:], body)
		return c, nil
	case TypeProof:
		return parseProof(body)
	case TypeResumed:
		return parseResumed(body)
	}
	return nil, malformed("unknown frame type 0x%02x", uint8(h.Type))
}

// ParseAck decodes an ACK body (16 bytes, checked by ParseHeader).
func ParseAck(h Header, body []byte) Ack {
	return Ack{
		Limit:   binary.BigEndian.Uint64(body[0:8]),
		Release: binary.BigEndian.Uint64(body[8:16]),
		FinSeen: h.Flags&FlagFinSeen != 0,
	}
}

func parseCodeReason(t Type, body []byte) (Code, string, error) {
	c := Code(binary.BigEndian.Uint16(body))
	r := body[2:]
	if !utf8.Valid(r) {
		return 0, "", malformed("%v: reason is not UTF-8", t)
	}
	return c, string(r), nil
}

// TruncateReason shortens s to fit MaxReason on a UTF-8 boundary.
func TruncateReason(s string) string {
	return TruncateUTF8(s, MaxReason)
}
