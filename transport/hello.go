package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Handshake constants (doc.go, "Handshake").
const (
	helloMagic   = "mtcp-ctl"
	helloVersion = 1
	nonceLen     = 32
	pubLen       = 32
	// helloFixed is the length of a hello without its name.
	helloFixed = len(helloMagic) + 1 + nonceLen + pubLen + 4 + 1
)

// hello is the first message of each side of the handshake.
type hello struct {
	Version    byte
	Nonce      [nonceLen]byte
	Pub        [pubLen]byte // X25519 public key
	MaxMessage uint32       // largest plaintext message the sender accepts
	Name       string       // sender's member name
}

// appendHello appends the encoding of h to dst.
func appendHello(dst []byte, h *hello) []byte {
	dst = append(dst, helloMagic...)
	dst = append(dst, h.Version)
	dst = append(dst, h.Nonce[:]...)
	dst = append(dst, h.Pub[:]...)
	dst = binary.BigEndian.AppendUint32(dst, h.MaxMessage)
	dst = append(dst, byte(len(h.Name)))
	return append(dst, h.Name...)
}

// readHello reads one hello from r and returns it with the exact bytes it
// consumed (for the transcript). It reads at most helloFixed+MaxNameLen
// bytes and fails on a bad magic as soon as the first 9 bytes are in.
func readHello(r io.Reader) (hello, []byte, error) {
	var h hello
	buf := make([]byte, helloFixed, helloFixed+MaxNameLen)
	head := len(helloMagic) + 1
	if _, err := io.ReadFull(r, buf[:head]); err != nil {
		return h, nil, shortHello(err)
	}
	if string(buf[:len(helloMagic)]) != helloMagic {
		return h, nil, protocolError("not an mtcp transport peer (bad magic %q)", buf[:len(helloMagic)])
	}
	h.Version = buf[len(helloMagic)]
	if h.Version != helloVersion {
		return h, nil, fmt.Errorf("%w: peer speaks version %d, this end %d", ErrVersion, h.Version, helloVersion)
	}
	if _, err := io.ReadFull(r, buf[head:]); err != nil {
		return h, nil, shortHello(err)
	}
	p := buf[head:]
	p = p[copy(h.Nonce[:], p):]
	p = p[copy(h.Pub[:], p):]
	h.MaxMessage = binary.BigEndian.Uint32(p)
	n := int(p[4])
	if h.MaxMessage < MinMessage {
		return h, nil, protocolError("peer accepts messages of at most %d bytes, below the minimum %d", h.MaxMessage, MinMessage)
	}
	buf = buf[:helloFixed+n]
	if _, err := io.ReadFull(r, buf[helloFixed:]); err != nil {
		return h, nil, shortHello(err)
	}
	name := buf[helloFixed:]
	if !utf8.Valid(name) {
		return h, nil, protocolError("peer name is not UTF-8")
	}
	h.Name = string(name)
	return h, buf, nil
}

// readProof reads a 32-byte handshake proof.
func readProof(r io.Reader) ([macLen]byte, error) {
	var m [macLen]byte
	if _, err := io.ReadFull(r, m[:]); err != nil {
		return m, shortHello(err)
	}
	return m, nil
}

// shortHello describes a handshake message cut short.
func shortHello(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("peer closed the connection during the handshake: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("reading handshake: %w", err)
}
