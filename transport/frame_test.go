package transport

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// testAEAD returns AES-256-GCM under a fixed key.
func testAEAD(seed byte) cipher.AEAD {
	b, err := aes.NewCipher(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

// framePipe returns a writer and a reader of one direction over buf.
func framePipe(buf *bytes.Buffer, max int) (w, r *secureConn) {
	w = newSecureConn(buf, nil, testAEAD(1), nil, max, 0)
	r = newSecureConn(nil, buf, nil, testAEAD(1), 0, max)
	return w, r
}

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, r := framePipe(&buf, 4096)
	msgs := [][]byte{{}, {1}, []byte("checkpoint"), bytes.Repeat([]byte{0x5a}, 4096)}
	for _, m := range msgs {
		sent, err := w.writeFrame(m)
		require.NoError(t, err)
		require.True(t, sent)
	}
	require.Equal(t, len(msgs)*(lenPrefix+tagLen)+4096+1+len("checkpoint"), buf.Len())
	for _, m := range msgs {
		got, err := r.readFrame()
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
	_, err := r.readFrame()
	require.ErrorIs(t, err, io.EOF)
}

// TestFrameTamper: changing any byte of a frame kills it.
func TestFrameTamper(t *testing.T) {
	var buf bytes.Buffer
	w, _ := framePipe(&buf, 4096)
	_, err := w.writeFrame([]byte("hand over session 7 at epoch 3"))
	require.NoError(t, err)
	frame := append([]byte(nil), buf.Bytes()...)
	for i := range frame {
		bad := append([]byte(nil), frame...)
		bad[i] ^= 0x80
		_, r := framePipe(new(bytes.Buffer), 4096)
		r.r = bytes.NewReader(bad)
		_, err := r.readFrame()
		require.Error(t, err, "byte %d", i)
	}
}

// TestFrameOrder: a replayed, dropped or reordered frame fails.
func TestFrameOrder(t *testing.T) {
	var buf bytes.Buffer
	w, _ := framePipe(&buf, 4096)
	var frames [][]byte
	for _, m := range []string{"zero", "one", "two"} {
		_, err := w.writeFrame([]byte(m))
		require.NoError(t, err)
		frames = append(frames, append([]byte(nil), buf.Bytes()...))
		buf.Reset()
	}
	for _, order := range [][]int{{0, 0}, {1}, {0, 2}, {1, 0}} {
		_, r := framePipe(new(bytes.Buffer), 4096)
		var stream []byte
		for _, i := range order {
			stream = append(stream, frames[i]...)
		}
		r.r = bytes.NewReader(stream)
		var err error
		for range order {
			if _, err = r.readFrame(); err != nil {
				break
			}
		}
		require.ErrorIs(t, err, ErrProtocol, "order %v", order)
	}
}

// TestFrameLengthChecked: a length over the limit fails before the body is
// read (or allocated); one under the tag length fails too.
func TestFrameLengthChecked(t *testing.T) {
	for _, n := range []uint32{4096 + tagLen + 1, 1 << 31, 1<<32 - 1} {
		_, r := framePipe(new(bytes.Buffer), 4096)
		hdr := binary.BigEndian.AppendUint32(nil, n)
		r.r = bytes.NewReader(hdr) // no body: reading it would fail with EOF
		_, err := r.readFrame()
		require.ErrorIs(t, err, ErrTooLarge, "length %d", n)
		require.ErrorIs(t, err, ErrProtocol)
	}
	for _, n := range []uint32{0, tagLen - 1} {
		_, r := framePipe(new(bytes.Buffer), 4096)
		r.r = bytes.NewReader(binary.BigEndian.AppendUint32(nil, n))
		_, err := r.readFrame()
		require.ErrorIs(t, err, ErrProtocol)
	}
	// A body cut short.
	var buf bytes.Buffer
	w, r := framePipe(&buf, 4096)
	_, err := w.writeFrame([]byte("cut"))
	require.NoError(t, err)
	buf.Truncate(buf.Len() - 1)
	_, err = r.readFrame()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestFrameWriteTooLarge(t *testing.T) {
	var buf bytes.Buffer
	w, _ := framePipe(&buf, 1024)
	sent, err := w.writeFrame(make([]byte, 1025))
	require.ErrorIs(t, err, ErrTooLarge)
	require.False(t, sent)
	require.Zero(t, buf.Len())
}
