package files

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// ErrCorrupt: the file's SHA-256 differs from the server's.
var ErrCorrupt = errors.New("download corrupt: SHA-256 mismatch")

// Get downloads name over c into w, calling progress with the bytes received
// so far and the file's size, and checks the file's SHA-256 against the
// server's. It returns the size and the digest.
func Get(c net.Conn, name string, w io.Writer, progress func(got, size int64)) (int64, []byte, error) {
	if _, err := fmt.Fprintf(c, "GET %s\n", name); err != nil {
		return 0, nil, err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "ERR "); ok {
		return 0, nil, fmt.Errorf("server: %s", msg)
	}
	sizeText, ok := strings.CutPrefix(line, "OK ")
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if !ok || err != nil || size < 0 {
		return 0, nil, fmt.Errorf("bad answer %q", line)
	}
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var got int64
	for got < size {
		n, err := r.Read(buf[:min(int64(len(buf)), size-got)])
		if n > 0 {
			h.Write(buf[:n])
			if _, werr := w.Write(buf[:n]); werr != nil {
				return got, nil, werr
			}
			got += int64(n)
			if progress != nil {
				progress(got, size)
			}
		}
		if err != nil {
			return got, nil, fmt.Errorf("after %d of %d bytes: %w", got, size, err)
		}
	}
	var trailer [sha256.Size]byte
	if _, err := io.ReadFull(r, trailer[:]); err != nil {
		return got, nil, fmt.Errorf("reading the digest: %w", err)
	}
	sum := h.Sum(nil)
	if !bytes.Equal(sum, trailer[:]) {
		return got, sum, fmt.Errorf("%w: got %x, server says %x", ErrCorrupt, sum, trailer)
	}
	return got, sum, nil
}
