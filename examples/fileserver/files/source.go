// Package files is the file server of the mtcp examples: a server
// application that streams files with its per-connection state (file, offset,
// running SHA-256) checkpointed as it goes, so that any member of a pool can
// take a download over, and the client side that downloads and verifies.
//
// The protocol is one line from the client, "GET <name>\n", answered by
// "OK <size>\n", the file's bytes and the 32-byte SHA-256 of the file, or by
// "ERR <reason>\n".
package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// Source opens the files a server serves.
type Source interface {
	// Open returns the named file positioned at offset, and its size.
	Open(name string, offset int64) (io.ReadCloser, int64, error)
}

// Dir serves the regular files under a directory.
type Dir string

// Open opens a file of the directory (no path may leave it).
func (d Dir) Open(name string, offset int64) (io.ReadCloser, int64, error) {
	name = path.Clean("/" + name)[1:]
	if !fs.ValidPath(name) {
		return nil, 0, fmt.Errorf("bad path %q", name)
	}
	f, err := os.Open(string(d) + "/" + name)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", name)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// Generated serves files made up on the fly, named "gen/<size>/<seed>":
// size bytes of a deterministic pseudo-random stream. The demo downloads one.
type Generated struct{}

// GeneratedName names a generated file.
func GeneratedName(size int64, seed uint64) string { return fmt.Sprintf("gen/%d/%d", size, seed) }

// Open returns the generated file positioned at offset.
func (Generated) Open(name string, offset int64) (io.ReadCloser, int64, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != "gen" {
		return nil, 0, fmt.Errorf("no file %q", name)
	}
	size, err1 := strconv.ParseInt(parts[1], 10, 64)
	seed, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil || size < 0 || offset > size {
		return nil, 0, fmt.Errorf("no file %q", name)
	}
	g := NewGenerator(seed)
	g.Skip(offset)
	return io.NopCloser(io.LimitReader(g, size-offset)), size, nil
}

// Generator is a deterministic pseudo-random byte stream that can skip ahead.
type Generator struct {
	seed  uint64
	block uint64 // index of the 8-byte block next
	buf   [8]byte
	off   int // bytes of buf already given
}

// NewGenerator returns the stream for seed.
func NewGenerator(seed uint64) *Generator { return &Generator{seed: seed, off: 8} }

// Skip moves the stream n bytes ahead.
func (g *Generator) Skip(n int64) {
	if n <= 0 {
		return
	}
	pos := int64(g.block)*8 - int64(8-g.off) + n
	g.block = uint64(pos / 8)
	g.fill()
	g.off = int(pos % 8)
}

func (g *Generator) fill() {
	x := g.seed + g.block*0x9e3779b97f4a7c15 // splitmix64 of the block index
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	for i := range g.buf {
		g.buf[i] = byte(x >> (8 * i))
	}
	g.block++
	g.off = 0
}

// Read fills p with the stream's next bytes.
func (g *Generator) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if g.off == 8 {
			g.fill()
		}
		k := copy(p[n:], g.buf[g.off:])
		g.off += k
		n += k
	}
	return n, nil
}

// Multi serves generated files and, if Dir is set, the files of a directory.
type Multi struct{ Dir Dir }

// Open dispatches on the name.
func (m Multi) Open(name string, offset int64) (io.ReadCloser, int64, error) {
	if strings.HasPrefix(name, "gen/") || m.Dir == "" {
		return Generated{}.Open(name, offset)
	}
	return m.Dir.Open(name, offset)
}
