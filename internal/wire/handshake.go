package wire

import "encoding/binary"

const (
	helloFixedLen  = 16
	helloNewLen    = helloFixedLen + KeyLen
	helloResumeLen = helloFixedLen + SessionIDLen + NonceLen
	welcomeLen     = 2 + SessionIDLen + KeyLen + 4 + 4 + 2 + 2 + 2
	positionsLen   = 32
	resumeMsgLen   = MACLen + positionsLen
)

// Hello opens a link: a new session (Resume false, Key set) or a resume
// (Resume true, Session and Nonce set).
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
}

// Welcome accepts a new session.
type Welcome struct {
	Version                uint8
	Session                [SessionIDLen]byte
	Key                    [KeyLen]byte // server's X25519 public key
	Window                 uint32
	Retention              uint32
	KeepAliveMillis        uint16
	KeepAliveTimeoutMillis uint16
}

// Challenge carries the server's fresh nonce for a resume.
type Challenge struct{ Nonce [NonceLen]byte }

// Positions is what each side tells the other when a session resumes.
type Positions struct {
	Received uint64 // incoming bytes received: the peer resumes sending here
	Limit    uint64 // flow-control limit for the peer
	Release  uint64 // first retained outgoing byte
	Written  uint64 // outgoing bytes written
}

// Proof is the client's answer to a Challenge.
type Proof struct {
	MAC [MACLen]byte
	Positions
}

// Resumed is the server's acceptance of a Proof.
type Resumed struct {
	MAC [MACLen]byte
	Positions
}

func (Hello) Type() Type     { return TypeHello }
func (Welcome) Type() Type   { return TypeWelcome }
func (Challenge) Type() Type { return TypeChallenge }
func (Proof) Type() Type     { return TypeProof }
func (Resumed) Type() Type   { return TypeResumed }

func (f Hello) header() Header {
	if f.Resume {
		return Header{Type: TypeHello, Length: helloResumeLen}
	}
	return Header{Type: TypeHello, Length: helloNewLen}
}
func (Welcome) header() Header   { return Header{Type: TypeWelcome, Length: welcomeLen} }
func (Challenge) header() Header { return Header{Type: TypeChallenge, Length: NonceLen} }
func (Proof) header() Header     { return Header{Type: TypeProof, Length: resumeMsgLen} }
func (Resumed) header() Header   { return Header{Type: TypeResumed, Length: resumeMsgLen} }

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
		return append(b, f.Nonce[:]...)
	}
	return append(b, f.Key[:]...)
}

// ParseHello decodes a HELLO body.
func ParseHello(body []byte) (Hello, error) {
	var h Hello
	if len(body) != helloNewLen && len(body) != helloResumeLen {
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
	want := helloNewLen
	if h.Resume {
		want = helloResumeLen
	}
	if len(body) != want {
		return h, malformed("HELLO: body of %d bytes for mode %d", len(body), body[2])
	}
	h.Window = binary.BigEndian.Uint32(body[4:])
	h.Retention = binary.BigEndian.Uint32(body[8:])
	h.KeepAliveMillis = binary.BigEndian.Uint16(body[12:])
	h.KeepAliveTimeoutMillis = binary.BigEndian.Uint16(body[14:])
	if err := checkKeepAlive("HELLO", h.KeepAliveMillis, h.KeepAliveTimeoutMillis); err != nil {
		return h, err
	}
	rest := body[helloFixedLen:]
	if h.Resume {
		copy(h.Session[:], rest)
		copy(h.Nonce[:], rest[SessionIDLen:])
	} else {
		copy(h.Key[:], rest)
	}
	return h, nil
}

func checkKeepAlive(what string, interval, timeout uint16) error {
	if interval < 10 || timeout <= interval {
		return malformed("%s: keepalive %d ms with timeout %d ms", what, interval, timeout)
	}
	return nil
}

func (f Welcome) appendBody(b []byte) []byte {
	b = append(b, f.Version, 0)
	b = append(b, f.Session[:]...)
	b = append(b, f.Key[:]...)
	b = binary.BigEndian.AppendUint32(b, f.Window)
	b = binary.BigEndian.AppendUint32(b, f.Retention)
	b = binary.BigEndian.AppendUint16(b, f.KeepAliveMillis)
	b = binary.BigEndian.AppendUint16(b, f.KeepAliveTimeoutMillis)
	return append(b, 0, 0)
}

// ParseWelcome decodes a WELCOME body.
func ParseWelcome(body []byte) (Welcome, error) {
	var w Welcome
	if len(body) != welcomeLen {
		return w, malformed("WELCOME: body of %d bytes", len(body))
	}
	w.Version = body[0]
	if w.Version == 0 || body[1] != 0 || body[welcomeLen-2] != 0 || body[welcomeLen-1] != 0 {
		return w, malformed("WELCOME: bad version or reserved bytes")
	}
	p := 2
	p += copy(w.Session[:], body[p:])
	p += copy(w.Key[:], body[p:])
	w.Window = binary.BigEndian.Uint32(body[p:])
	w.Retention = binary.BigEndian.Uint32(body[p+4:])
	w.KeepAliveMillis = binary.BigEndian.Uint16(body[p+8:])
	w.KeepAliveTimeoutMillis = binary.BigEndian.Uint16(body[p+10:])
	return w, checkKeepAlive("WELCOME", w.KeepAliveMillis, w.KeepAliveTimeoutMillis)
}

func (f Challenge) appendBody(b []byte) []byte { return append(b, f.Nonce[:]...) }

func (f Proof) appendBody(b []byte) []byte {
	return f.Positions.AppendTo(append(b, f.MAC[:]...))
}

func (f Resumed) appendBody(b []byte) []byte {
	return f.Positions.AppendTo(append(b, f.MAC[:]...))
}

// AppendTo appends the 32-byte encoding of p (also the input of the resume MACs).
func (p Positions) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, p.Received)
	b = binary.BigEndian.AppendUint64(b, p.Limit)
	b = binary.BigEndian.AppendUint64(b, p.Release)
	return binary.BigEndian.AppendUint64(b, p.Written)
}

func parsePositions(b []byte) Positions {
	return Positions{
		Received: binary.BigEndian.Uint64(b[0:]),
		Limit:    binary.BigEndian.Uint64(b[8:]),
		Release:  binary.BigEndian.Uint64(b[16:]),
		Written:  binary.BigEndian.Uint64(b[24:]),
	}
}
