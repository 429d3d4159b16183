package wire

import "encoding/binary"

const (
	helloFixedLen     = 16
	helloNewLen       = helloFixedLen + KeyLen
	helloResumeMinLen = helloFixedLen + SessionIDLen + NonceLen + 8 + 8 + 1
	helloResumeMaxLen = helloResumeMinLen + MaxNameLen
	welcomeMinLen     = 2 + SessionIDLen + KeyLen + 4 + 4 + 2 + 2 + 8 + 1
	welcomeMaxLen     = welcomeMinLen + MaxNameLen
	positionsLen      = 40
	proofMinLen       = MACLen + positionsLen + 2
	proofMaxLen       = proofMinLen + 8*MaxKnown
	resumedMinLen     = MACLen + positionsLen + 8 + 1 + 1
	resumedMaxLen     = resumedMinLen + MaxNameLen
)

// Hello opens a link: a new session (Resume false, Key set) or a resume
// (Resume true, Session, Nonce, Epoch and Origin set).
type Hello struct {
	MinVersion, MaxVersion uint8
	Resume                 bool
	Window                 uint32 // client's receive window
	Retention              uint32 // client's retention capacity
	KeepAliveMillis        uint16
	KeepAliveTimeoutMillis uint16
	Key                    [KeyLen]byte       // new session: client's X25519 public key
	Session                [SessionIDLen]byte // resume: the session
	Nonce                  [NonceLen]byte     // resume: fresh client nonce
	Epoch                  uint64             // resume: the session's epoch as the client knows it
	Attempt                uint64             // resume: counts the client's resume attempts of the session, from 1
	Origin                 string             // resume: the member that served the session last
}

// Welcome flags.
const (
	WelcomePool uint8 = 0x01 // the server is a pool member: checkpoints and moves apply
)

// Welcome accepts a new session.
type Welcome struct {
	Version                uint8
	Flags                  uint8
	Session                [SessionIDLen]byte
	Key                    [KeyLen]byte // server's X25519 public key
	Window                 uint32
	Retention              uint32
	KeepAliveMillis        uint16
	KeepAliveTimeoutMillis uint16
	Epoch                  uint64
	Member                 string // the serving member's name (empty when standalone)
}

// Challenge carries the server's fresh nonce for a resume.
type Challenge struct{ Nonce [NonceLen]byte }

// Positions is what each side tells the other when a session resumes.
type Positions struct {
	Received uint64 // incoming bytes received: the peer resumes sending here
	Limit    uint64 // flow-control limit for the peer
	Release  uint64 // the peer may free its output before this position
	Retained uint64 // first outgoing byte this side still holds
	Written  uint64 // outgoing bytes written
}

// MaxKnown bounds the checkpoint positions a PROOF lists.
const MaxKnown = 1024

// Proof is the client's answer to a Challenge. Known lists the output
// positions at which the client can check regenerated output (the
// checkpoints it was told of), for a member that restores the session.
type Proof struct {
	MAC [MACLen]byte
	Positions
	Known []uint64
}

// Resumed flags.
const (
	ResumedRestored uint8 = 0x01 // restored from a checkpoint: output resumes at Written
)

// Resumed is the server's acceptance of a Proof.
type Resumed struct {
	MAC [MACLen]byte
	Positions
	Epoch  uint64
	Flags  uint8
	Member string
}

// Type returns TypeHello.
func (Hello) Type() Type { return TypeHello }

// Type returns TypeWelcome.
func (Welcome) Type() Type { return TypeWelcome }

// Type returns TypeChallenge.
func (Challenge) Type() Type { return TypeChallenge }

// Type returns TypeProof.
func (Proof) Type() Type { return TypeProof }

// Type returns TypeResumed.
func (Resumed) Type() Type { return TypeResumed }

func (f Hello) header() Header {
	if f.Resume {
		return Header{Type: TypeHello, Length: uint32(helloResumeMinLen + min(len(f.Origin), MaxNameLen))}
	}
	return Header{Type: TypeHello, Length: helloNewLen}
}
func (f Welcome) header() Header {
	return Header{Type: TypeWelcome, Length: uint32(welcomeMinLen + min(len(f.Member), MaxNameLen))}
}
func (Challenge) header() Header { return Header{Type: TypeChallenge, Length: NonceLen} }
func (f Proof) header() Header {
	return Header{Type: TypeProof, Length: uint32(proofMinLen + 8*min(len(f.Known), MaxKnown))}
}
func (f Resumed) header() Header {
	return Header{Type: TypeResumed, Length: uint32(resumedMinLen + min(len(f.Member), MaxNameLen))}
}

func (f Hello) appendBody(b []byte) []byte {
	mode := byte(0)
	if f.Resume {
		mode = 1
	}
	b = append(b, f.MinVersion, f.MaxVersion, mode, 0)
	b = binary.BigEndian.AppendUint32(b, f.Window)
	b = binary.BigEndian.AppendUint32(b, f.Retention)
	b = binary.BigEndian.AppendUint16(b, f.KeepAliveMillis)
	b = binary.BigEndian.AppendUint16(b, f.KeepAliveTimeoutMillis)
	if f.Resume {
		b = append(b, f.Session[:]...)
		b = append(b, f.Nonce[:]...)
		b = binary.BigEndian.AppendUint64(b, f.Epoch)
		b = binary.BigEndian.AppendUint64(b, f.Attempt)
		return appendStr8(b, f.Origin, MaxNameLen)
	}
	return append(b, f.Key[:]...)
}

// ParseHello decodes a HELLO body.
func ParseHello(body []byte) (Hello, error) {
	var h Hello
	if len(body) < helloFixedLen {
		return h, malformed("HELLO: body of %d bytes", len(body))
	}
	h.MinVersion, h.MaxVersion = body[0], body[1]
	if h.MinVersion == 0 || h.MinVersion > h.MaxVersion {
		return h, malformed("HELLO: bad version range [%d, %d]", h.MinVersion, h.MaxVersion)
	}
	switch body[2] {
	case 0:
	case 1:
		h.Resume = true
	default:
		return h, malformed("HELLO: unknown mode %d", body[2])
	}
	if body[3] != 0 {
		return h, malformed("HELLO: reserved byte set")
	}
	h.Window = binary.BigEndian.Uint32(body[4:])
	h.Retention = binary.BigEndian.Uint32(body[8:])
	h.KeepAliveMillis = binary.BigEndian.Uint16(body[12:])
	h.KeepAliveTimeoutMillis = binary.BigEndian.Uint16(body[14:])
	if err := checkKeepAlive("HELLO", h.KeepAliveMillis, h.KeepAliveTimeoutMillis); err != nil {
		return h, err
	}
	rest := body[helloFixedLen:]
	if !h.Resume {
		if len(rest) != KeyLen {
			return h, malformed("HELLO: new-session body of %d bytes", len(body))
		}
		copy(h.Key[:], rest)
		return h, nil
	}
	if len(body) < helloResumeMinLen {
		return h, malformed("HELLO: resume body of %d bytes", len(body))
	}
	rest = rest[copy(h.Session[:], rest):]
	rest = rest[copy(h.Nonce[:], rest):]
	h.Epoch = binary.BigEndian.Uint64(rest)
	h.Attempt = binary.BigEndian.Uint64(rest[8:])
	origin, err := parseLastStr8(rest[16:], MaxNameLen, "HELLO", "origin")
	h.Origin = origin
	return h, err
}

func checkKeepAlive(what string, interval, timeout uint16) error {
	if interval < 10 || timeout <= interval {
		return malformed("%s: keepalive %d ms with timeout %d ms", what, interval, timeout)
	}
	return nil
}

func (f Welcome) appendBody(b []byte) []byte {
	b = append(b, f.Version, f.Flags)
	b = append(b, f.Session[:]...)
	b = append(b, f.Key[:]...)
	b = binary.BigEndian.AppendUint32(b, f.Window)
	b = binary.BigEndian.AppendUint32(b, f.Retention)
	b = binary.BigEndian.AppendUint16(b, f.KeepAliveMillis)
	b = binary.BigEndian.AppendUint16(b, f.KeepAliveTimeoutMillis)
	b = binary.BigEndian.AppendUint64(b, f.Epoch)
	return appendStr8(b, f.Member, MaxNameLen)
}

// ParseWelcome decodes a WELCOME body.
func ParseWelcome(body []byte) (Welcome, error) {
	var w Welcome
	if len(body) < welcomeMinLen || len(body) > welcomeMaxLen {
		return w, malformed("WELCOME: body of %d bytes", len(body))
	}
	w.Version, w.Flags = body[0], body[1]
	if w.Version == 0 || w.Flags&^WelcomePool != 0 {
		return w, malformed("WELCOME: bad version %d or flags 0x%02x", w.Version, w.Flags)
	}
	p := 2
	p += copy(w.Session[:], body[p:])
	p += copy(w.Key[:], body[p:])
	w.Window = binary.BigEndian.Uint32(body[p:])
	w.Retention = binary.BigEndian.Uint32(body[p+4:])
	w.KeepAliveMillis = binary.BigEndian.Uint16(body[p+8:])
	w.KeepAliveTimeoutMillis = binary.BigEndian.Uint16(body[p+10:])
	w.Epoch = binary.BigEndian.Uint64(body[p+12:])
	member, err := parseLastStr8(body[p+20:], MaxNameLen, "WELCOME", "member")
	if err != nil {
		return w, err
	}
	w.Member = member
	return w, checkKeepAlive("WELCOME", w.KeepAliveMillis, w.KeepAliveTimeoutMillis)
}

func (f Challenge) appendBody(b []byte) []byte { return append(b, f.Nonce[:]...) }

func (f Proof) appendBody(b []byte) []byte {
	return f.AppendFields(append(b, f.MAC[:]...))
}

// Fields returns the bytes the client's MAC covers: everything after the MAC.
func (f Proof) Fields() []byte {
	return f.AppendFields(make([]byte, 0, positionsLen+2+8*min(len(f.Known), MaxKnown)))
}

// FieldsRoom is room for the fields a MAC covers of any RESUMED, and of a
// PROOF with up to 25 known positions: a buffer on the caller's stack for
// AppendFields (more spills to the heap).
const FieldsRoom = 256

// AppendFields appends Fields to b (a buffer of the caller's: a MAC over
// them needs no allocation).
func (f Proof) AppendFields(b []byte) []byte {
	known := f.Known[:min(len(f.Known), MaxKnown)]
	b = f.Positions.AppendTo(b)
	b = binary.BigEndian.AppendUint16(b, uint16(len(known)))
	for _, k := range known {
		b = binary.BigEndian.AppendUint64(b, k)
	}
	return b
}

func parseProof(body []byte) (Proof, error) {
	var p Proof
	if len(body) < proofMinLen {
		return p, malformed("PROOF: body of %d bytes", len(body))
	}
	copy(p.MAC[:], body)
	p.Positions = parsePositions(body[MACLen:])
	rest := body[MACLen+positionsLen:]
	n := int(binary.BigEndian.Uint16(rest))
	if n > MaxKnown || len(rest) != 2+8*n {
		return p, malformed("PROOF: %d known positions in %d bytes", n, len(rest)-2)
	}
	if n > 0 {
		p.Known = make([]uint64, n)
		for i := range p.Known {
			p.Known[i] = binary.BigEndian.Uint64(rest[2+8*i:])
		}
	}
	return p, nil
}

func (f Resumed) appendBody(b []byte) []byte {
	return f.AppendFields(append(b, f.MAC[:]...))
}

// Fields returns the bytes the server's MAC covers: everything after the MAC.
func (f Resumed) Fields() []byte { return f.AppendFields(make([]byte, 0, resumedMaxLen)) }

// AppendFields appends Fields to b (a buffer of the caller's: a MAC over
// them needs no allocation).
func (f Resumed) AppendFields(b []byte) []byte {
	b = f.Positions.AppendTo(b)
	b = binary.BigEndian.AppendUint64(b, f.Epoch)
	b = append(b, f.Flags)
	return appendStr8(b, f.Member, MaxNameLen)
}

func parseResumed(body []byte) (Resumed, error) {
	var r Resumed
	if len(body) < resumedMinLen {
		return r, malformed("RESUMED: body of %d bytes", len(body))
	}
	copy(r.MAC[:], body)
	r.Positions = parsePositions(body[MACLen:])
	p := MACLen + positionsLen
	r.Epoch = binary.BigEndian.Uint64(body[p:])
	r.Flags = body[p+8]
	if r.Flags&^ResumedRestored != 0 {
		return r, malformed("RESUMED: undefined flags 0x%02x", r.Flags)
	}
	member, err := parseLastStr8(body[p+9:], MaxNameLen, "RESUMED", "member")
	r.Member = member
	return r, err
}

// AppendTo appends the 40-byte encoding of p.
func (p Positions) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, p.Received)
	b = binary.BigEndian.AppendUint64(b, p.Limit)
	b = binary.BigEndian.AppendUint64(b, p.Release)
	b = binary.BigEndian.AppendUint64(b, p.Retained)
	return binary.BigEndian.AppendUint64(b, p.Written)
}

func parsePositions(b []byte) Positions {
	return Positions{
		Received: binary.BigEndian.Uint64(b[0:]),
		Limit:    binary.BigEndian.Uint64(b[8:]),
		Release:  binary.BigEndian.Uint64(b[16:]),
		Retained: binary.BigEndian.Uint64(b[24:]),
		Written:  binary.BigEndian.Uint64(b[32:]),
	}
}
