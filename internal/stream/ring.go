package stream

// ring is a byte FIFO addressed by absolute stream positions. It holds the
// bytes [start, start+n) in chunks of ChunkSize taken as the bytes need them
// and given back as soon as they are empty: it never copies its content to
// grow, and an empty ring holds no memory. It holds at most max bytes.
type ring struct {
	chunks   []*chunk // chunks[i] holds the positions from start-head+i*ChunkSize on
	head     int      // offset of the byte at position start in chunks[0]
	n        int      // bytes held
	start    uint64   // absolute position of the first byte held
	max      int      // capacity limit
	reserved int      // bytes past the end handed out by reserve, not yet committed
	mem      Memory   // the budget chunks are taken from (nil: none)
	must     bool     // chunks are taken whatever the budget says
}

// keptChunkSlots is the longest list of chunks an empty ring keeps.
const keptChunkSlots = 4

func newRing(max int, mem Memory, must bool) ring { return ring{max: max, mem: mem, must: must} }

// end is the position just past the last byte held.
func (r *ring) end() uint64 { return r.start + uint64(r.n) }

// free is how many more bytes the ring may hold.
func (r *ring) free() int { return r.max - r.n }

// held is the memory the ring holds.
func (r *ring) held() int { return len(r.chunks) * ChunkSize }

// room is how many bytes past the end the chunks held can take.
func (r *ring) room() int { return r.held() - r.head - r.n }

// ensure takes chunks until k bytes past the end fit (or the budget says
// no); it reports how many fit.
func (r *ring) ensure(k int) int {
	for r.room() < k {
		if r.mem != nil && !r.mem.Take(ChunkSize, r.must) {
			break
		}
		r.chunks = append(r.chunks, chunks.Get().(*chunk))
	}
	return min(k, r.room())
}

// span returns the bytes of the chunk holding position pos from pos on, at
// most k of them.
func (r *ring) span(pos uint64, k int) []byte {
	off := r.head + int(pos-r.start)
	c := r.chunks[off/ChunkSize]
	at := off % ChunkSize
	return c[at:min(ChunkSize, at+k)]
}

// write appends as much of p as fits and returns how much it took; less
// than free() means the budget is spent.
func (r *ring) write(p []byte) int {
	k := r.ensure(min(len(p), r.free()))
	for done := 0; done < k; {
		c := copy(r.span(r.end(), k-done), p[done:k])
		r.n += c
		done += c
	}
	return k
}

// reserve returns the space for the next k bytes (k <= free()), in one or
// two pieces that may hold fewer than k bytes, without committing it: the
// caller fills it without the lock while the front is read and discarded.
// Commit with commit.
func (r *ring) reserve(k int) (a, b []byte) {
	k = r.ensure(k)
	if k == 0 {
		return nil, nil
	}
	a = r.span(r.end(), k)
	if len(a) < k {
		b = r.span(r.end()+uint64(len(a)), k-len(a))
	}
	r.reserved = len(a) + len(b)
	return a, b
}

// commit makes k reserved bytes part of the content.
func (r *ring) commit(k int) {
	r.n += k
	r.reserved = 0
}

// pieces appends to dst the bytes of [from, to), which must lie within the
// content, one piece per chunk. The pieces stay valid until the bytes are
// discarded.
func (r *ring) pieces(dst [][]byte, from, to uint64) [][]byte {
	for from < to {
		p := r.span(from, int(to-from))
		dst = append(dst, p)
		from += uint64(len(p))
	}
	return dst
}

// peek returns the first bytes of [from, to) in one or two pieces (fewer
// than to-from bytes when they span more than two chunks).
func (r *ring) peek(from, to uint64) (a, b []byte) {
	if from >= to {
		return nil, nil
	}
	a = r.span(from, int(to-from))
	if from += uint64(len(a)); from < to {
		b = r.span(from, int(to-from))
	}
	return a, b
}

// discard drops the bytes before position to (which lies within the
// content) and gives back the chunks left empty.
func (r *ring) discard(to uint64) {
	k := int(to - r.start)
	if k <= 0 {
		return
	}
	r.start = to
	r.n -= k
	r.head += k
	r.trim()
}

// trim gives back the chunks before the head, and every chunk once the ring
// is empty and nothing is reserved.
func (r *ring) trim() {
	drop := min(r.head/ChunkSize, len(r.chunks))
	if r.n == 0 && r.reserved == 0 {
		drop = len(r.chunks)
	}
	if drop == 0 {
		return
	}
	for _, c := range r.chunks[:drop] {
		chunks.Put(c)
	}
	if r.mem != nil {
		r.mem.Give(drop * ChunkSize)
	}
	if drop == len(r.chunks) {
		// The next chunk starts at start. A short list of chunks is kept
		// for the next bytes (a ring that empties after every small write
		// allocates nothing); a long one goes.
		clear(r.chunks)
		r.chunks, r.head = r.chunks[:0], 0
		if cap(r.chunks) > keptChunkSlots {
			r.chunks = nil
		}
		return
	}
	k := copy(r.chunks, r.chunks[drop:])
	clear(r.chunks[k:])
	r.chunks = r.chunks[:k]
	r.head -= drop * ChunkSize
}

// read copies bytes from the front into p and discards them.
func (r *ring) read(p []byte) int {
	k := min(len(p), r.n)
	for done := 0; done < k; {
		done += copy(p[done:k], r.span(r.start+uint64(done), k-done))
	}
	r.discard(r.start + uint64(k))
	return k
}

// skipEmpty moves the positions of an empty ring on by k, as if k bytes had
// been written and read. A reservation is abandoned: the caller is the
// ring's only filler.
func (r *ring) skipEmpty(k int) {
	if r.n != 0 {
		panic("stream: skipEmpty on a ring holding bytes")
	}
	r.start += uint64(k)
	r.reserved = 0
	r.trim()
}

// release gives back every chunk (the stream is done with its buffers).
func (r *ring) release() {
	r.n, r.reserved = 0, 0
	r.trim()
}
