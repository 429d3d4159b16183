package wire

import "encoding/binary"

// Limits of the pool frames.
const (
	MaxMembers     = 1024       // members in one MEMBERS frame
	maxMembersBody = 64<<10 - 1 // MEMBERS body bound
	memberMinLen   = 15         // flags, sessions, rate, and two empty strings
	markLen        = 24
	verifyLen      = 20
)

// MemberInfo is one pool member as a client sees it.
type MemberInfo struct {
	Name     string
	Addr     string // where clients connect
	Sessions uint32 // load
	// BytesPerSec is the member's recent traffic with its clients (both
	// ways): with Sessions, how well it serves them.
	BytesPerSec uint64
	Draining    bool
	// Balancing: the member sheds sessions above its share itself
	// (mtcp.Config.Balance); its clients leave moves for load to it.
	Balancing bool
}

// MEMBERS flags.
const (
	memberDraining  = 0x01
	memberBalancing = 0x02
)

// Members tells a client the pool's members (server to client).
type Members struct{ List []MemberInfo }

// MoveReason says why a server asks its client to move.
type MoveReason uint8

// Move reasons.
const (
	MoveRequested MoveReason = 1 // the server application asked (Conn.Migrate)
	MoveDrain     MoveReason = 2 // the server is draining
	MoveBalance   MoveReason = 3 // the pool is unevenly loaded
)

// Move asks the client to move its session to another member.
type Move struct {
	Reason MoveReason
	Name   string
	Addr   string
}

// Mark tells the client, at output position Out, that the server application
// checkpointed there (sequence Seq, having consumed In bytes of input).
type Mark struct{ Seq, Out, In uint64 }

// Verify is the client's digest (CRC-32C) of the output bytes [From, To) it
// received, sent to a server that restored the session at From.
type Verify struct {
	From, To uint64
	CRC      uint32
}

// Type returns TypeMembers.
func (Members) Type() Type { return TypeMembers }

// Type returns TypeMove.
func (Move) Type() Type { return TypeMove }

// Type returns TypeMark.
func (Mark) Type() Type { return TypeMark }

// Type returns TypeVerify.
func (Verify) Type() Type { return TypeVerify }

func (f Members) header() Header {
	return Header{Type: TypeMembers, Length: uint32(len(f.appendBody(nil)))}
}
func (f Move) header() Header { return Header{Type: TypeMove, Length: uint32(len(f.appendBody(nil)))} }
func (Mark) header() Header   { return Header{Type: TypeMark, Length: markLen} }
func (Verify) header() Header { return Header{Type: TypeVerify, Length: verifyLen} }

// appendBody encodes as many members, from the first, as fit both
// MaxMembers and the MEMBERS body bound (long names and addresses make
// fewer fit).
func (f Members) appendBody(b []byte) []byte {
	list, size := f.List, 2
	for i, m := range list {
		size += 1 + 4 + 8 + 1 + len(TruncateUTF8(m.Name, MaxNameLen)) + 1 + len(TruncateUTF8(m.Addr, MaxAddrLen))
		if i == MaxMembers || size > maxMembersBody {
			list = list[:i]
			break
		}
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(list)))
	for _, m := range list {
		flags := byte(0)
		if m.Draining {
			flags |= memberDraining
		}
		if m.Balancing {
			flags |= memberBalancing
		}
		b = append(b, flags)
		b = binary.BigEndian.AppendUint32(b, m.Sessions)
		b = binary.BigEndian.AppendUint64(b, m.BytesPerSec)
		b = appendStr8(b, m.Name, MaxNameLen)
		b = appendStr8(b, m.Addr, MaxAddrLen)
	}
	return b
}

func parseMembers(body []byte) (Members, error) {
	var f Members
	n := int(binary.BigEndian.Uint16(body))
	if n > MaxMembers {
		return f, malformed("MEMBERS: %d members", n)
	}
	rest := body[2:]
	f.List = make([]MemberInfo, 0, min(n, len(rest)/memberMinLen))
	for i := 0; i < n; i++ {
		if len(rest) < 13 {
			return f, malformed("MEMBERS: truncated member %d", i)
		}
		var m MemberInfo
		if rest[0]&^(memberDraining|memberBalancing) != 0 {
			return f, malformed("MEMBERS: undefined flags 0x%02x", rest[0])
		}
		m.Draining, m.Balancing = rest[0]&memberDraining != 0, rest[0]&memberBalancing != 0
		m.Sessions = binary.BigEndian.Uint32(rest[1:])
		m.BytesPerSec = binary.BigEndian.Uint64(rest[5:])
		var err error
		if m.Name, rest, err = parseStr8(rest[13:], MaxNameLen, "MEMBERS name"); err != nil {
			return f, err
		}
		if m.Addr, rest, err = parseStr8(rest, MaxAddrLen, "MEMBERS address"); err != nil {
			return f, err
		}
		f.List = append(f.List, m)
	}
	if len(rest) != 0 {
		return f, malformed("MEMBERS: %d trailing bytes", len(rest))
	}
	return f, nil
}

func (f Move) appendBody(b []byte) []byte {
	b = append(b, byte(f.Reason))
	b = appendStr8(b, f.Name, MaxNameLen)
	return appendStr8(b, f.Addr, MaxAddrLen)
}

func parseMove(body []byte) (Move, error) {
	f := Move{Reason: MoveReason(body[0])}
	if f.Reason < MoveRequested || f.Reason > MoveBalance {
		return f, malformed("MOVE: unknown reason %d", body[0])
	}
	var err error
	rest := body[1:]
	if f.Name, rest, err = parseStr8(rest, MaxNameLen, "MOVE name"); err != nil {
		return f, err
	}
	f.Addr, err = parseLastStr8(rest, MaxAddrLen, "MOVE", "address")
	return f, err
}

func (f Mark) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.Seq)
	b = binary.BigEndian.AppendUint64(b, f.Out)
	return binary.BigEndian.AppendUint64(b, f.In)
}

// ParseMark decodes a MARK body (24 bytes, checked by ParseHeader).
func ParseMark(body []byte) Mark {
	return Mark{
		Seq: binary.BigEndian.Uint64(body),
		Out: binary.BigEndian.Uint64(body[8:]),
		In:  binary.BigEndian.Uint64(body[16:]),
	}
}

func (f Verify) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, f.From)
	b = binary.BigEndian.AppendUint64(b, f.To)
	return binary.BigEndian.AppendUint32(b, f.CRC)
}

// ParseVerify decodes a VERIFY body (20 bytes, checked by ParseHeader).
func ParseVerify(body []byte) (Verify, error) {
	f := Verify{
		From: binary.BigEndian.Uint64(body),
		To:   binary.BigEndian.Uint64(body[8:]),
		CRC:  binary.BigEndian.Uint32(body[16:]),
	}
	if f.From > f.To {
		return f, malformed("VERIFY: range [%d, %d)", f.From, f.To)
	}
	return f, nil
}
