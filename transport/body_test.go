package transport

import (
	"context"
	"errors"
	"math"
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
	err := DecodeBody(hugeClaim, &v)
	require.ErrorIs(t, err, msgpackcheck.ErrMalformed)
	require.ErrorContains(t, err, "declares 3707764736 bytes; 6 follow")
	// The decoder alone allocates a megabyte for this claim (msgpack v5).
	// The count is the process's: goroutines left by earlier tests may add
	// to one try, not to all of them.
	least := uint64(math.MaxUint64)
	for range 5 {
		least = min(least, allocated(func() { _ = DecodeBody(hugeClaim, &v) }))
	}
	if least > 4<<10 {
		t.Fatalf("refusing the body allocated %d bytes", least)
	}
}

// TestHugeClaimsRefusedOverTheWire: a request body claiming gigabytes
// reaches the caller as CodeBadRequest, and a response body claiming them
// fails the call with a decoding error; the server serves on.
func TestHugeClaimsRefusedOverTheWire(t *testing.T) {
	s, _ := startServer(t, nil)
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

// TestRequestDecoder: a handler's decode function decodes the body, and
// its failures carry CodeBadRequest and name the kind.
func TestRequestDecoder(t *testing.T) {
	body, err := msgpack.Marshal(echoMsg{Text: "hi"})
	require.NoError(t, err)
	var m echoMsg
	require.NoError(t, RequestDecoder("echo", body)(&m))
	require.Equal(t, "hi", m.Text)

	err = RequestDecoder("echo", hugeClaim)(&m)
	require.ErrorIs(t, err, msgpackcheck.ErrMalformed)
	require.Equal(t, CodeBadRequest, RemoteErrorOf(err).Code)
	require.ErrorContains(t, err, `decoding "echo" request`)
}

// TestDecodeResponse: an answer decodes into resp, or is discarded for a
// nil resp; one that does not decode names the call.
func TestDecodeResponse(t *testing.T) {
	body, err := msgpack.Marshal(echoMsg{Text: "hi"})
	require.NoError(t, err)
	var m echoMsg
	require.NoError(t, DecodeResponse("echo", "10.0.0.1:7000", body, &m))
	require.Equal(t, "hi", m.Text)
	require.NoError(t, DecodeResponse("echo", "10.0.0.1:7000", hugeClaim, nil))

	err = DecodeResponse("echo", "10.0.0.1:7000", hugeClaim, &m)
	require.ErrorIs(t, err, msgpackcheck.ErrMalformed)
	require.ErrorContains(t, err, `transport: decoding "echo" response from 10.0.0.1:7000`)
}
