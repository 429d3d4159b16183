package pool

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/msgpackcheck"
)

// TestBatchBodyEncodesAsBinary: a batch's bodies travel as msgpack
// binaries, as plain byte slices do, and decode back.
func TestBatchBodyEncodesAsBinary(t *testing.T) {
	inner, err := msgpack.Marshal(map[string]int{"k": 1})
	require.NoError(t, err)
	got, err := msgpack.Marshal(batchItem{Kind: "x", Body: inner, TimeoutMS: 5})
	require.NoError(t, err)
	want, err := msgpack.Marshal(struct {
		Kind      string `msgpack:"k"`
		Body      []byte `msgpack:"b"`
		TimeoutMS uint32 `msgpack:"t"`
	}{"x", inner, 5})
	require.NoError(t, err)
	require.Equal(t, want, got)

	var rep batchReply
	b, err := msgpack.Marshal(batchReply{List: []batchAnswer{{Body: inner}, {Code: "c", Message: "m"}}})
	require.NoError(t, err)
	require.NoError(t, msgpack.Unmarshal(b, &rep))
	require.Equal(t, batchBody(inner), rep.List[0].Body)
	require.Empty(t, rep.List[1].Body)
}

// TestBatchBodyRefusesHugeClaims: a batched body whose header claims
// gigabytes fails the batch's decoding, before any decoder sizes a buffer
// by it.
func TestBatchBodyRefusesHugeClaims(t *testing.T) {
	hostile := []byte("\x81\xa1k\xdb\xdd\x00\x00\x00abcdef")
	b, err := msgpack.Marshal(batchRequest{List: []batchItem{{Kind: "x", Body: hostile}}})
	require.NoError(t, err)
	var req batchRequest
	err = msgpack.Unmarshal(b, &req)
	require.ErrorIs(t, err, msgpackcheck.ErrMalformed)
	require.ErrorContains(t, err, "declares 3707764736 bytes; 6 follow")
}
