// Package wire encodes and decodes the frames of the mtcp link protocol
// (spec.md at the repository root). It is pure: no sockets, no goroutines, no
// state beyond the bytes it is given. Every parser checks lengths against the
// limits below before it reads or allocates, so hostile input costs bounded
// memory and time.
package wire

import (
	"fmt"
)

// Preface is the first 8 bytes a client sends on every link.
var Preface = [8]byte{0x89, 'M', 'T', 'C', 'P', '\r', '\n', 0x1a}

// Version is the protocol version this package speaks.
const Version = 1

// Limits of the protocol (spec.md, section 9).
const (
	HeaderLen        = 8         // bytes in a frame header
	MaxPayload       = 256 << 10 // largest DATA payload
	MaxReason        = 1 << 10   // largest ABORT/REFUSED reason
	MaxExtensionBody = 64 << 10  // largest body of an extension frame (type >= 0x80)
	NonceLen         = 32        // bytes in a handshake nonce
	KeyLen           = 32        // bytes in an X25519 public key
	MACLen           = 32        // bytes in an HMAC-SHA256
	SessionIDLen     = 16        // bytes in a session id
)

// Type is a frame type.
type Type uint8

// Frame types (spec.md, section 3).
const (
	TypeData      Type = 0x01
	TypeAck       Type = 0x02
	TypePing      Type = 0x03
	TypePong      Type = 0x04
	TypeFin       Type = 0x05
	TypeClose     Type = 0x06
	TypeAbort     Type = 0x07
	TypeMembers   Type = 0x08
	TypeMove      Type = 0x09
	TypeMark      Type = 0x0A
	TypeVerify    Type = 0x0B
	TypeHello     Type = 0x10
	TypeWelcome   Type = 0x11
	TypeChallenge Type = 0x12
	TypeProof     Type = 0x13
	TypeResumed   Type = 0x14
	TypeRefused   Type = 0x15

	// FirstExtension is the lowest extension type; unknown extensions are skipped.
	FirstExtension Type = 0x80
)

var typeNames = map[Type]string{
	TypeData: "DATA", TypeAck: "ACK", TypePing: "PING", TypePong: "PONG",
	TypeFin: "FIN", TypeClose: "CLOSE", TypeAbort: "ABORT", TypeMembers: "MEMBERS",
	TypeMove: "MOVE", TypeMark: "MARK", TypeVerify: "VERIFY", TypeHello: "HELLO",
	TypeWelcome: "WELCOME", TypeChallenge: "CHALLENGE", TypeProof: "PROOF",
	TypeResumed: "RESUMED", TypeRefused: "REFUSED",
}

// String returns the frame type's name, as spec.md spells it, or its
// number for a type not known.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	if t >= FirstExtension {
		return fmt.Sprintf("EXT(0x%02x)", uint8(t))
	}
	return fmt.Sprintf("UNKNOWN(0x%02x)", uint8(t))
}

// IsExtension reports whether t is in the extension range.
func (t Type) IsExtension() bool { return t >= FirstExtension }
