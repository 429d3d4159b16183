package transport

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRequestEncoding(t *testing.T) {
	msg := appendRequest(nil, 0, "fetch", []byte{0x81, 0xa1, 'k', 1})
	setRequestTimeout(msg, 1500*time.Millisecond)
	r, err := parseRequest(msg)
	require.NoError(t, err)
	require.Equal(t, request{TimeoutMS: 1500, Kind: "fetch", Body: []byte{0x81, 0xa1, 'k', 1}}, r)

	for d, want := range map[time.Duration]uint32{
		-time.Second:                            1,
		0:                                       1,
		time.Microsecond:                        1,
		1001 * time.Microsecond:                 2,
		time.Hour:                               3_600_000,
		1 << 62:                                 1<<32 - 1,
		time.Duration(1<<32) * time.Millisecond: 1<<32 - 1,
	} {
		setRequestTimeout(msg, d)
		r, err := parseRequest(msg)
		require.NoError(t, err)
		require.Equal(t, want, r.TimeoutMS, "%v", d)
	}

	for _, bad := range [][]byte{
		nil,
		{msgRequest, 0, 0, 0, 0},
		{msgResponse, 0, 0, 0, 0, 1, 'k'},
		{msgRequest, 0, 0, 0, 0, 0},
		{msgRequest, 0, 0, 0, 0, 2, 'k'},
	} {
		_, err := parseRequest(bad)
		require.ErrorIs(t, err, ErrProtocol, "%x", bad)
	}
}

func TestResponseEncoding(t *testing.T) {
	r, err := parseResponse(appendResponse(nil, []byte{0xc0}))
	require.NoError(t, err)
	require.Equal(t, response{Body: []byte{0xc0}}, r)

	r, err = parseResponse(appendErrorResponse(nil, &RemoteError{Code: "stale_epoch", Message: "epoch 3 < 4"}, 1024))
	require.NoError(t, err)
	require.Equal(t, &RemoteError{Code: "stale_epoch", Message: "epoch 3 < 4"}, r.Err)

	// Codes and messages are cut to their limits and to the message limit.
	long := &RemoteError{Code: strings.Repeat("c", 300), Message: strings.Repeat("m", 20000)}
	msg := appendErrorResponse(nil, long, 1<<20)
	require.Len(t, msg, 2+maxCodeLen+maxErrorMessage)
	msg = appendErrorResponse(nil, long, 1024)
	require.Len(t, msg, 1024)
	r, err = parseResponse(msg)
	require.NoError(t, err)
	require.Len(t, r.Err.Code, maxCodeLen)
	// An empty code becomes CodeError.
	r, err = parseResponse(appendErrorResponse(nil, &RemoteError{Message: "x"}, 1024))
	require.NoError(t, err)
	require.Equal(t, CodeError, r.Err.Code)

	for _, bad := range [][]byte{
		nil,
		{msgRequest},
		{msgError},
		{msgError, 0},
		{msgError, 3, 'a'},
		{9, 1, 2},
	} {
		_, err := parseResponse(bad)
		require.ErrorIs(t, err, ErrProtocol, "%x", bad)
	}
}

func TestCutText(t *testing.T) {
	require.Equal(t, "abc", cutText("abc", 5))
	require.Equal(t, "ab", cutText("abc", 2))
	require.Equal(t, "a", cutText("aé", 2), "a rune is not split")
	require.Equal(t, "", cutText("é", 1))
}
