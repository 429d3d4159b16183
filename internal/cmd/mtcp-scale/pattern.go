package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"math/rand/v2"
)

// The bytes the scenarios send: a stream named by a seed is a fixed random
// block read from a seed-dependent start, with the stream offset stamped
// every stampEvery bytes. Any byte lost, duplicated, reordered or changed
// shows when the receiver compares what it got with what the offset should
// hold, at the cost of a copy and a compare (bulk transfers run faster
// than SHA-256 could hash them).
const (
	patternLen = 1<<20 - 17 // not a multiple of any read or write size
	stampEvery = 4096
	stampLen   = 8
)

var patternBlock = func() []byte {
	b := make([]byte, patternLen)
	r := rand.NewChaCha8([32]byte{'m', 't', 'c', 'p', '-', 's', 'c', 'a', 'l', 'e'})
	_, _ = r.Read(b)
	return b
}()

// fillPattern fills p with stream seed's bytes from offset off on.
func fillPattern(p []byte, seed, off uint64) {
	pos := int((off + seed*7919) % patternLen)
	for n := 0; n < len(p); {
		k := copy(p[n:], patternBlock[pos:])
		n += k
		pos = 0
	}
	// Stamps: the 8 bytes at each multiple of stampEvery hold that offset
	// (xor the seed); p may start or end inside one.
	end := off + uint64(len(p))
	var stamp [stampLen]byte
	for a := off - off%stampEvery; a < end; a += stampEvery {
		binary.BigEndian.PutUint64(stamp[:], a^seed)
		for j := uint64(0); j < stampLen; j++ {
			if a+j >= off && a+j < end {
				p[a+j-off] = stamp[j]
			}
		}
	}
}

// patternChecker checks a stream's bytes as they arrive; one made with
// hashes also keeps the SHA-256 of what arrived and of what was sent.
type patternChecker struct {
	seed, off uint64
	want      []byte
	got, sent hash.Hash // nil: no digests
}

func newPatternChecker(seed uint64, digests bool) *patternChecker {
	c := &patternChecker{seed: seed, want: make([]byte, 64<<10)}
	if digests {
		c.got, c.sent = sha256.New(), sha256.New()
	}
	return c
}

// digestsMatch reports whether what arrived hashes as what was sent.
func (c *patternChecker) digestsMatch() bool {
	return c.got != nil && bytes.Equal(c.got.Sum(nil), c.sent.Sum(nil))
}

// check compares p with the stream's next bytes.
func (c *patternChecker) check(p []byte) error {
	for len(p) > 0 {
		k := min(len(p), len(c.want))
		fillPattern(c.want[:k], c.seed, c.off)
		if c.got != nil {
			c.got.Write(p[:k])
			c.sent.Write(c.want[:k])
		}
		if !bytes.Equal(p[:k], c.want[:k]) {
			i := 0
			for p[i] == c.want[i] {
				i++
			}
			return fmt.Errorf("stream %d: byte %d differs from what was sent", c.seed, c.off+uint64(i))
		}
		c.off += uint64(k)
		p = p[k:]
	}
	return nil
}
