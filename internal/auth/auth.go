// Package auth holds the session cryptography: the X25519 exchange that
// gives each new session its secret, and the HMAC proofs by which a client
// and a server show each other that they hold it when a session resumes.
package auth

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/migratory/mtcp/internal/wire"
)

// Secret is a session's shared secret.
type Secret [32]byte

// KeyPair is an ephemeral X25519 key pair.
type KeyPair struct {
	priv *ecdh.PrivateKey
	Pub  [wire.KeyLen]byte
	sharedCache
}

// NewKeyPair returns a fresh ephemeral key pair.
func NewKeyPair() (*KeyPair, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating X25519 key: %w", err)
	}
	kp := &KeyPair{priv: priv}
	copy(kp.Pub[:], priv.PublicKey().Bytes())
	return kp, nil
}

// DeriveSecret computes the session secret (spec.md, section 4) from this side's
// key pair and the peer's public key.
func (kp *KeyPair) DeriveSecret(peer [wire.KeyLen]byte, session [wire.SessionIDLen]byte,
	clientPub, serverPub [wire.KeyLen]byte) (Secret, error) {
	shared, err := kp.exchange(peer)
	if err != nil {
		return Secret{}, err
	}
	return secretOf(shared, session, clientPub, serverPub), nil
}

// exchange returns X25519(own private key, peer), remembered if the pair
// keeps a cache.
func (kp *KeyPair) exchange(peer [wire.KeyLen]byte) ([]byte, error) {
	if z, ok := kp.lookup(peer); ok {
		return z, nil
	}
	pk, err := ecdh.X25519().NewPublicKey(peer[:])
	if err != nil {
		return nil, fmt.Errorf("peer public key: %w", err)
	}
	z, err := kp.priv.ECDH(pk)
	if err != nil {
		return nil, fmt.Errorf("X25519: %w", err)
	}
	kp.remember(peer, z)
	return z, nil
}

// Nonce returns 32 fresh random bytes.
func Nonce() [wire.NonceLen]byte {
	var n [wire.NonceLen]byte
	_, _ = rand.Read(n[:]) // crypto/rand.Read never fails (Go 1.24+)
	return n
}

// SessionID returns a fresh random session id.
func SessionID() [wire.SessionIDLen]byte {
	var id [wire.SessionIDLen]byte
	_, _ = rand.Read(id[:])
	return id
}

const (
	clientLabel = "mtcp v1 resume client"
	serverLabel = "mtcp v1 resume server"
)

// Resume is what both MACs of a resume bind besides the fields of the frame
// they end (spec.md, section 5): the session, both nonces, and the epoch,
// attempt and origin that the client's HELLO named. A HELLO changed on the
// way makes the proofs fail.
type Resume struct {
	Session     [wire.SessionIDLen]byte
	ClientNonce [wire.NonceLen]byte
	ServerNonce [wire.NonceLen]byte
	Epoch       uint64
	Attempt     uint64
	Origin      string
}

// NewResume returns the resume that a HELLO and the server's CHALLENGE
// describe.
func NewResume(h wire.Hello, ch wire.Challenge) Resume {
	return Resume{Session: h.Session, ClientNonce: h.Nonce, ServerNonce: ch.Nonce, Epoch: h.Epoch, Attempt: h.Attempt, Origin: h.Origin}
}

func (r Resume) mac(secret Secret, label string, fields []byte) [wire.MACLen]byte {
	var stack [macStack]byte
	b := macStart(stack[:0], secret[:])
	b = append(b, label...)
	b = append(b, r.Session[:]...)
	b = append(b, r.ClientNonce[:]...)
	b = append(b, r.ServerNonce[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Epoch)
	b = binary.BigEndian.AppendUint64(b, r.Attempt)
	origin := r.Origin[:min(len(r.Origin), wire.MaxNameLen)] // as the HELLO carries it
	b = append(b, byte(len(origin)))
	b = append(b, origin...)
	b = append(b, fields...)
	return macSum(secret[:], b)
}

// ClientMAC is the client's resume proof over the PROOF's fields.
func (r Resume) ClientMAC(secret Secret, fields []byte) [wire.MACLen]byte {
	return r.mac(secret, clientLabel, fields)
}

// ServerMAC is the server's resume proof over the RESUMED's fields.
func (r Resume) ServerMAC(secret Secret, fields []byte) [wire.MACLen]byte {
	return r.mac(secret, serverLabel, fields)
}

// Equal compares two MACs in constant time.
func Equal(a, b [wire.MACLen]byte) bool { return hmac.Equal(a[:], b[:]) }
