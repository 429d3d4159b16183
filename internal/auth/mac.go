package auth

import "crypto/sha256"

// A resume computes four HMACs (the client's proof, made and checked; the
// server's, made and checked), thousands a second while a member drains:
// crypto/hmac allocates two hash states, two pads and the sum each time.
// The MACs here are the same HMAC-SHA256 (RFC 2104) over a message built in
// a buffer on the stack: macStart, then the message appended, then macSum;
// no allocation for the messages a resume proves.

const macBlock = 64 // SHA-256's block size

// macStack is room on the stack for the inner pad and the message of a
// resume proof, which lists the client's known checkpoints: more spills to
// the heap.
const macStack = 512

// macStart appends to b the inner pad of an HMAC-SHA256 under key (at
// most a block long, as every key here is): the message goes after it.
func macStart(b []byte, key []byte) []byte {
	for i := range macBlock {
		p := byte(0x36)
		if i < len(key) {
			p ^= key[i]
		}
		b = append(b, p)
	}
	return b
}

// macSum returns the HMAC-SHA256 under key of the message in padded, which
// macStart began.
func macSum(key []byte, padded []byte) [sha256.Size]byte {
	inner := sha256.Sum256(padded)
	var outer [macBlock + sha256.Size]byte
	for i := range macBlock {
		outer[i] = 0x5c
		if i < len(key) {
			outer[i] ^= key[i]
		}
	}
	copy(outer[macBlock:], inner[:])
	return sha256.Sum256(outer[:])
}
