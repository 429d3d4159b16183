package auth

import "github.com/migratory/mtcp/internal/wire"

// secretInfo is the start of the HKDF info of a session secret; both
// public keys follow it.
const secretInfo = "mtcp v1 session secret"

// secretOf is the session secret of spec.md, section 4:
// HKDF-SHA256(ikm = shared, salt = session id, info = secretInfo || client
// key || server key), its first 32 bytes. One output block is all it
// needs, so the HKDF is its two HMACs (RFC 5869: extract, then the first
// block of expand), on the stack: both ends of every new session derive
// one, and crypto/hkdf allocates hash states for each.
func secretOf(shared []byte, session [wire.SessionIDLen]byte, clientPub, serverPub [wire.KeyLen]byte) Secret {
	var stack [macBlock + len(secretInfo) + 2*wire.KeyLen + 1]byte
	b := macStart(stack[:0], session[:])
	b = append(b, shared...)
	prk := macSum(session[:], b) // extract

	b = macStart(stack[:0], prk[:])
	b = append(b, secretInfo...)
	b = append(b, clientPub[:]...)
	b = append(b, serverPub[:]...)
	b = append(b, 1) // the first block of expand
	return macSum(prk[:], b)
}
