package files

import (
	"bufio"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// Conn is what the server needs of an mtcp session.
type Conn interface {
	net.Conn
	Checkpoint(state []byte) error
	State() []byte
}

// state is the per-connection state the server checkpoints.
type state struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Offset int64  `json:"offset"` // bytes of the file sent
	Hash   []byte `json:"hash"`   // SHA-256 state of the bytes sent
}

// chunk is how much of a file goes out between two checkpoints.
const chunk = 256 << 10

// Serve answers one client: it reads the request (or, on a member that took
// the download over, restores where the last checkpoint left it) and streams
// the file, checkpointing after every chunk.
func Serve(c Conn, src Source) error {
	defer c.Close()
	var st state
	h := sha256.New()
	if b := c.State(); b != nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("restoring: %w", err)
		}
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
			return fmt.Errorf("restoring the hash: %w", err)
		}
	} else {
		line, err := bufio.NewReader(io.LimitReader(c, 4096)).ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the request: %w", err)
		}
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "GET ")
		if !ok {
			_, _ = fmt.Fprintf(c, "ERR expected GET <name>\n")
			return errors.New("bad request")
		}
		f, size, err := src.Open(name, 0)
		if err != nil {
			_, _ = fmt.Fprintf(c, "ERR %v\n", err)
			return err
		}
		f.Close()
		st = state{Name: name, Size: size}
		if _, err := fmt.Fprintf(c, "OK %d\n", size); err != nil {
			return err
		}
		if err := checkpoint(c, &st, h); err != nil {
			return err
		}
	}
	f, _, err := src.Open(st.Name, st.Offset)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, chunk)
	for st.Offset < st.Size {
		n, err := io.ReadFull(f, buf[:min(int64(chunk), st.Size-st.Offset)])
		if err != nil {
			return fmt.Errorf("reading %s: %w", st.Name, err)
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return err
		}
		h.Write(buf[:n])
		st.Offset += int64(n)
		if err := checkpoint(c, &st, h); err != nil {
			return err
		}
	}
	if _, err := c.Write(h.Sum(nil)); err != nil {
		return err
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, c) // until the client closes
	return nil
}

func checkpoint(c Conn, st *state, h io.Writer) error {
	hs, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	st.Hash = hs
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return c.Checkpoint(b)
}
