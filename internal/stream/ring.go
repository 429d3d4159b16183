package stream

// ring is a byte FIFO addressed by absolute stream positions. It holds the
// bytes [start, start+n) and grows by doubling up to max; memory is taken
// only as the bytes held need it.
type ring struct {
	buf   []byte
	head  int    // index of the byte at position start
	n     int    // bytes held
	start uint64 // absolute position of the first byte held
	max   int    // capacity limit
}

const minRingSize = 16 << 10

func newRing(max int) ring { return ring{max: max} }

// end is the position just past the last byte held.
func (r *ring) end() uint64 { return r.start + uint64(r.n) }

// free is how many more bytes the ring may hold.
func (r *ring) free() int { return r.max - r.n }

// grow makes room for at least need bytes in total, up to max.
func (r *ring) grow(need int) {
	if need <= len(r.buf) {
		return
	}
	size := len(r.buf)
	if size == 0 {
		size = minRingSize
	}
	for size < need {
		size *= 2
	}
	if size > r.max {
		size = r.max
	}
	nb := make([]byte, size)
	a, b := r.peek(r.start, r.end())
	copy(nb[copy(nb, a):], b)
	r.buf, r.head = nb, 0
}

// write appends as much of p as fits and returns how much it took.
func (r *ring) write(p []byte) int {
	k := min(len(p), r.free())
	if k == 0 {
		return 0
	}
	a, b := r.reserve(k)
	copy(b, p[copy(a, p):k])
	r.n += k
	return k
}

// reserve returns the free space for the next k bytes (k <= free()), in one or
// two pieces, without committing it. Commit with commit(k).
func (r *ring) reserve(k int) (a, b []byte) {
	r.grow(r.n + k)
	tail := (r.head + r.n) % len(r.buf)
	if tail+k <= len(r.buf) {
		return r.buf[tail : tail+k], nil
	}
	return r.buf[tail:], r.buf[:k-(len(r.buf)-tail)]
}

// commit makes k reserved bytes part of the content.
func (r *ring) commit(k int) { r.n += k }

// peek returns the bytes of [from, to), which must lie within the content, in
// one or two pieces. The pieces stay valid until the bytes are discarded.
func (r *ring) peek(from, to uint64) (a, b []byte) {
	if from >= to {
		return nil, nil
	}
	off := (r.head + int(from-r.start)) % len(r.buf)
	k := int(to - from)
	if off+k <= len(r.buf) {
		return r.buf[off : off+k], nil
	}
	return r.buf[off:], r.buf[:k-(len(r.buf)-off)]
}

// discard drops the bytes before position to (which lies within the content).
func (r *ring) discard(to uint64) {
	k := int(to - r.start)
	if k <= 0 {
		return
	}
	// head moves and n shrinks together, so the tail (where a reservation made
	// outside the lock is being filled) stays where it is.
	r.start = to
	r.n -= k
	r.head = (r.head + k) % len(r.buf)
}

// read copies bytes from the front into p and discards them.
func (r *ring) read(p []byte) int {
	k := min(len(p), r.n)
	if k == 0 {
		return 0
	}
	a, b := r.peek(r.start, r.start+uint64(k))
	copy(p[copy(p, a):], b)
	r.discard(r.start + uint64(k))
	return k
}

// skipEmpty moves the positions of an empty ring on by k, as if k bytes had
// been written and read.
func (r *ring) skipEmpty(k int) {
	if r.n != 0 {
		panic("stream: skipEmpty on a ring holding bytes")
	}
	r.start += uint64(k)
}
