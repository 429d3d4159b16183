package transport

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// TestRunHandler: RunHandler answers with the encoded response, or with
// CodeBadRequest for a body that does not decode, CodeInternal for a
// response that does not encode or a panic (logged with its stack, when
// there is a logger), and the handler's error as RemoteErrorOf gives it.
func TestRunHandler(t *testing.T) {
	h := func(ctx context.Context, from string, decode func(any) error) (any, error) {
		var m echoMsg
		if err := decode(&m); err != nil {
			return nil, err
		}
		switch m.Text {
		case "panic":
			panic("handler bug")
		case "unencodable":
			return make(chan int), nil
		case "fail":
			return nil, codedError{"not_found"}
		}
		return echoMsg{Text: from + ":" + m.Text}, nil
	}
	encode := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		return b
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	ctx := context.Background()

	resp, rerr := RunHandler(ctx, log, h, "a", "echo", encode(echoMsg{Text: "hi"}))
	require.Nil(t, rerr)
	require.Equal(t, encode(echoMsg{Text: "a:hi"}), resp)

	for _, tc := range []struct {
		body []byte
		want RemoteError
	}{
		{hugeClaim, RemoteError{CodeBadRequest, `decoding "echo" request: not one well-formed msgpack value: type 0xdb at byte 3 declares 3707764736 bytes; 6 follow`}},
		{encode(echoMsg{Text: "unencodable"}), RemoteError{CodeInternal, `encoding "echo" response: msgpack: Encode(unsupported chan int)`}},
		{encode(echoMsg{Text: "fail"}), RemoteError{"not_found", "coded failure not_found"}},
		{encode(echoMsg{Text: "panic"}), RemoteError{CodeInternal, `handler for "echo" panicked`}},
	} {
		resp, rerr := RunHandler(ctx, log, h, "a", "echo", tc.body)
		require.Nil(t, resp)
		require.Equal(t, &tc.want, rerr)
	}
	require.Contains(t, logged.String(), "handler bug")
	require.Contains(t, logged.String(), "handler_test.go", "the stack is logged")

	_, rerr = RunHandler(ctx, nil, h, "a", "echo", encode(echoMsg{Text: "panic"}))
	require.Equal(t, CodeInternal, rerr.Code, "no logger, no log")
	require.True(t, errors.Is(rerr, &RemoteError{Code: CodeInternal}))
}
