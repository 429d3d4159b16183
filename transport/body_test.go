package transport

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/msgpackcheck"
)

// hugeClaim is a body whose map holds a string claiming 3.7 GB, of which
// six bytes follow.
var hugeClaim = []byte("\x81\xa1k\xdb\xdd\x00\x00\x00abcdef")

// TestDecodeBodyRefusesHugeClaimsCheaply: a body claiming gigabytes is
// refused with an error saying so, before the decoder sizes a buffer by it.
func TestDecodeBodyRefusesHugeClaimsCheaply(t *testing.T) {
	var v echoMsg
	err := decodeBody(hugeClaim, &v)
	require.ErrorIs(t, err, msgpackcheck.ErrMalformed)
	require.ErrorContains(t, err, "declares 3707764736 bytes; 6 follow")
	// The decoder alone allocates a megabyte for this claim (msgpack v5).
	if n := allocated(func() { _ = decodeBody(hugeClaim, &v) }); n > 4<<10 {
		t.Fatalf("refusing the body allocated %d bytes", n)
	}
}

// TestHugeClaimsRefusedOverTheWire: a request body claiming gigabytes
// reaches the caller as CodeBadRequest, and a response body claiming them
// fails the call with a decoding error; the server serves on.
func TestHugeClaimsRefusedOverTheWire(t *testing.T) {
	s, _ := startServer(t, nil)
	s.Handle("echo", echoHandler)
	s.Handle("hostile", func(ctx context.Context, from string, decode func(any) error) (any, error) {
		return msgpack.RawMessage(hugeClaim), nil
	})
	c := newClient(t, nil)
	addr := s.Addr().String()
	ctx := ctxTimeout(t, 5*time.Second)

	err := c.Call(ctx, addr, "echo", msgpack.RawMessage(hugeClaim), nil)
	var re *RemoteError
	require.True(t, errors.As(err, &re), "%v", err)
	require.Equal(t, CodeBadRequest, re.Code)
	require.Contains(t, re.Message, "declares 3707764736 bytes; 6 follow")

	var got echoMsg
	err = c.Call(ctx, addr, "hostile", nil, &got)
	require.ErrorIs(t, err, msgpackcheck.ErrMalformed)
	require.ErrorContains(t, err, `decoding "hostile" response`)

	require.NoError(t, c.Call(ctx, addr, "echo", echoMsg{Text: "hi"}, &got))
	require.Equal(t, "client:hi", got.Text)
}
