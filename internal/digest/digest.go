// Package digest computes CRC-32C (Castagnoli) digests of stream ranges. A
// client keeps one running digest of every byte it has received; from the
// digests of two prefixes it can tell the digest of the bytes between them
// without having kept those bytes. That is how a server that regenerates
// output after a restore learns whether it regenerated the same bytes.
package digest

import "hash/crc32"

// castagnoli is the reflected CRC-32C polynomial.
const castagnoli = 0x82f63b78

var table = crc32.MakeTable(crc32.Castagnoli)

// Running is the digest of a stream's prefix: the CRC-32C of its first Pos bytes.
type Running struct {
	CRC uint32
	Pos uint64
}

// Write adds p to the prefix.
func (r *Running) Write(p []byte) {
	r.CRC = crc32.Update(r.CRC, table, p)
	r.Pos += uint64(len(p))
}

// Of returns the CRC-32C of p.
func Of(p []byte) uint32 { return crc32.Checksum(p, table) }

// Update extends the CRC-32C crc of some bytes with p.
func Update(crc uint32, p []byte) uint32 { return crc32.Update(crc, table, p) }

// Between returns the CRC-32C of the bytes between two prefixes of one
// stream: from is the digest of the shorter prefix, to of the longer.
func Between(from, to Running) uint32 {
	return to.CRC ^ multModP(xPow8n(to.Pos-from.Pos), from.CRC)
}

// multModP multiplies a and b modulo the polynomial (reflected bit order).
func multModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoli
		} else {
			b >>= 1
		}
	}
	return p
}

// x2n[k] is x^(2^k) modulo the polynomial.
var x2n = func() (t [64]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = multModP(p, p)
	}
	return t
}()

// xPow8n returns x^(8n) modulo the polynomial: the operator that moves a
// CRC past n zero bytes.
func xPow8n(n uint64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = multModP(x2n[k], p)
		}
	}
	return p
}
