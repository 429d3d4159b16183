package testapp

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// UploadConfig shapes the upload application.
type UploadConfig struct {
	// Banner is how many bytes the application writes (BannerAt's pattern)
	// before it ends its output with CloseWrite.
	Banner int64
	// Chunk is how many banner bytes it writes after each checkpoint
	// (64 KiB if 0): the last checkpoint before the end of the output lies
	// one chunk before it.
	Chunk int64
	// NoReadCheckpoints stops the checkpoints at the last banner chunk: none
	// after the end of the output, none after reads. Otherwise the
	// application checkpoints once its output has ended and after every
	// read, without writing (an upload, log shipping).
	NoReadCheckpoints bool
	// EndShift makes a session restored from a checkpoint end its output
	// this many bytes after the banner's end (before it, if negative): an
	// application that does not regenerate its output, for tests that it
	// is caught.
	EndShift int64
}

// Upload serves one session of the upload application: it writes a banner,
// ends its output with CloseWrite and reads the client's input to its end,
// keeping a running SHA-256 of it. Its state is the banner bytes written,
// whether its output ended, and the SHA-256 state; a restored session
// writes again what follows the checkpoint and ends its output again.
func Upload(c Session, cfg UploadConfig, ev Events) {
	defer c.Close()
	id := c.SessionID()
	chunk := cfg.Chunk
	if chunk <= 0 {
		chunk = 64 << 10
	}
	h := sha256.New()
	var written int64
	ended := false
	restored := c.State() != nil
	if restored {
		st := c.State()
		if len(st) < 9 {
			report(ev.Failed, id, fmt.Errorf("restoring the state: %d bytes", len(st)))
			return
		}
		written, ended = int64(binary.BigEndian.Uint64(st)), st[8] == 1
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st[9:]); err != nil {
			report(ev.Failed, id, fmt.Errorf("restoring the state: %w", err))
			return
		}
	}
	if ev.Started != nil {
		ev.Started(id, restored)
	}
	checkpoint := func() error {
		st := binary.BigEndian.AppendUint64(nil, uint64(written))
		if ended {
			st = append(st, 1)
		} else {
			st = append(st, 0)
		}
		return c.Checkpoint(append(st, marshal(h)...))
	}
	end := cfg.Banner
	if restored {
		end += cfg.EndShift
	}
	buf := make([]byte, chunk)
	for written < end {
		if !ended {
			if err := checkpoint(); err != nil {
				report(ev.Failed, id, fmt.Errorf("checkpoint: %w", err))
				return
			}
		}
		p := buf[:min(chunk, end-written)]
		BannerAt(written, p)
		if _, err := c.Write(p); err != nil {
			report(ev.Failed, id, fmt.Errorf("write: %w", err))
			return
		}
		written += int64(len(p))
	}
	// The end of the output is written again by a restored session too: it
	// is part of the output.
	if err := c.CloseWrite(); err != nil {
		report(ev.Failed, id, fmt.Errorf("close write: %w", err))
		return
	}
	ended = true
	if !cfg.NoReadCheckpoints {
		if err := checkpoint(); err != nil {
			report(ev.Failed, id, fmt.Errorf("checkpoint: %w", err))
			return
		}
	}
	in := make([]byte, 16<<10)
	for {
		if ev.Pause != nil {
			if ch := ev.Pause(); ch != nil {
				<-ch
			}
		}
		n, err := c.Read(in)
		if n > 0 {
			h.Write(in[:n])
			if !cfg.NoReadCheckpoints {
				if cerr := checkpoint(); cerr != nil {
					report(ev.Failed, id, fmt.Errorf("checkpoint: %w", cerr))
					return
				}
			}
		}
		if errors.Is(err, io.EOF) {
			if ev.Final != nil {
				ev.Final(id, h.Sum(nil))
			}
			return
		}
		if err != nil {
			report(ev.Failed, id, fmt.Errorf("read: %w", err))
			return
		}
	}
}

// BannerAt fills p with the upload application's banner from position off.
func BannerAt(off int64, p []byte) {
	for i := range p {
		x := uint64(off+int64(i)) * 0x9E3779B97F4A7C15
		p[i] = byte(x>>56) ^ byte(x>>29)
	}
}

// BannerDigest returns the SHA-256 of the first n banner bytes.
func BannerDigest(n int64) []byte {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for off := int64(0); off < n; {
		p := buf[:min(int64(len(buf)), n-off)]
		BannerAt(off, p)
		h.Write(p)
		off += int64(len(p))
	}
	return h.Sum(nil)
}
