package files

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGeneratorSkip(t *testing.T) {
	whole := make([]byte, 10_000)
	_, _ = NewGenerator(7).Read(whole)
	for _, off := range []int64{0, 1, 7, 8, 9, 4095, 9_999} {
		g := NewGenerator(7)
		g.Skip(off)
		part := make([]byte, len(whole)-int(off))
		_, _ = g.Read(part)
		require.Equal(t, whole[off:], part, "offset %d", off)
	}
}

// restartable is a net.Conn with a Checkpoint/State that keeps the last
// state, to check that a download can be taken up from a checkpoint.
type restartable struct {
	net.Conn
	state []byte
	saved *[]byte
}

func (r *restartable) Checkpoint(s []byte) error { *r.saved = append([]byte(nil), s...); return nil }
func (r *restartable) State() []byte             { return r.state }

func TestServeResumesFromCheckpoint(t *testing.T) {
	name := GeneratedName(3<<20, 5)
	want := make([]byte, 3<<20)
	_, _ = NewGenerator(5).Read(want)

	// A first server sends part of the file, then stops (its connection is cut).
	var saved []byte
	a, b := net.Pipe()
	first := make(chan struct{})
	go func() {
		defer close(first)
		_ = Serve(&restartable{Conn: a, saved: &saved}, Generated{})
	}()
	_, _ = b.Write([]byte("GET " + name + "\n"))
	head := make([]byte, len("OK 3145728\n")+1<<20)
	_, err := io.ReadFull(b, head)
	require.NoError(t, err)
	b.Close()
	<-first // the first server stopped: its last checkpoint is final
	require.NotNil(t, saved)

	// A second server restores the checkpoint and sends the rest of the
	// file from it (mtcp would drop what the client already has), then the
	// digest of the whole file.
	var st state
	require.NoError(t, json.Unmarshal(saved, &st))
	require.Positive(t, st.Offset)
	c, d := net.Pipe()
	defer d.Close()
	go func() { _ = Serve(&restartable{Conn: c, state: saved, saved: new([]byte)}, Generated{}) }()
	rest := make([]byte, int64(len(want))-st.Offset+32)
	_, err = io.ReadFull(d, rest)
	require.NoError(t, err)
	require.Equal(t, want[st.Offset:], rest[:len(rest)-32], "the restored server continues the same file")
	sum := sha256.Sum256(want)
	require.Equal(t, sum[:], rest[len(rest)-32:], "and its digest covers the whole file")
}
