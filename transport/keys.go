package transport

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// Labels: the HKDF info strings and the HMAC prefixes of doc.go.
const (
	infoAuth        = "mtcp transport v1 auth"
	infoClientWrite = "mtcp transport v1 client to server"
	infoServerWrite = "mtcp transport v1 server to client"
	labelServer     = "mtcp transport v1 server proof"
	labelClient     = "mtcp transport v1 client proof"
	labelBusy       = "mtcp transport v1 busy"
)

// macLen is the length of a handshake proof (HMAC-SHA256).
const macLen = sha256.Size

// authKey derives the handshake authentication key from the pool key.
func authKey(poolKey []byte) []byte {
	k, err := hkdf.Key(sha256.New, poolKey, nil, infoAuth, 32)
	if err != nil {
		panic(err) // only for lengths HKDF-SHA256 cannot produce
	}
	return k
}

// proof computes a handshake proof: HMAC-SHA256(authKey, label || transcript).
func proof(authKey []byte, label string, transcript []byte) [macLen]byte {
	m := hmac.New(sha256.New, authKey)
	m.Write([]byte(label))
	m.Write(transcript)
	var out [macLen]byte
	m.Sum(out[:0])
	return out
}

// trafficKeys derives the two per-direction AEADs of a connection from the
// pool key, the X25519 shared secret and the handshake transcript (which
// holds both nonces).
func trafficKeys(poolKey, shared, transcript []byte) (c2s, s2c cipher.AEAD, err error) {
	ikm := make([]byte, 0, len(poolKey)+len(shared))
	ikm = append(append(ikm, poolKey...), shared...)
	salt := sha256.Sum256(transcript)
	mk := func(info string) (cipher.AEAD, error) {
		k, err := hkdf.Key(sha256.New, ikm, salt[:], info, 32)
		if err != nil {
			return nil, err
		}
		b, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	if c2s, err = mk(infoClientWrite); err != nil {
		return nil, nil, fmt.Errorf("deriving traffic keys: %w", err)
	}
	if s2c, err = mk(infoServerWrite); err != nil {
		return nil, nil, fmt.Errorf("deriving traffic keys: %w", err)
	}
	return c2s, s2c, nil
}

// sharedSecret computes X25519(priv, peer); an invalid or low-order peer
// key is a protocol error.
func sharedSecret(priv *ecdh.PrivateKey, peer [32]byte) ([]byte, error) {
	pk, err := ecdh.X25519().NewPublicKey(peer[:])
	if err != nil {
		return nil, protocolError("bad X25519 public key: %v", err)
	}
	s, err := priv.ECDH(pk)
	if err != nil {
		return nil, protocolError("X25519: %v", err)
	}
	return s, nil
}
