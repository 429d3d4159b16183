package pool

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/msgpackcheck"
)

// The batches as reflection encodes and decodes them: what members that
// do not encode them by hand send and expect.
type (
	plainBatchRequest struct {
		List []plainBatchItem `msgpack:"l"`
	}
	plainBatchItem struct {
		Kind      string `msgpack:"k"`
		Body      []byte `msgpack:"b"`
		TimeoutMS uint32 `msgpack:"t"`
	}
	plainBatchReply struct {
		List []plainBatchAnswer `msgpack:"l"`
	}
	plainBatchAnswer struct {
		Body    []byte `msgpack:"b"`
		Code    string `msgpack:"c"`
		Message string `msgpack:"m"`
	}
)

// sampleBatches returns requests and replies of every size of list, string,
// body and number the encoding distinguishes.
func sampleBatches() ([]batchRequest, []batchReply) {
	strs := []string{"", "replicate", strings.Repeat("k", 31), strings.Repeat("k", 32), strings.Repeat("m", 0x100), strings.Repeat("m", 0x10000)}
	var bodies [][]byte
	bodies = append(bodies, nil, []byte{})
	for _, n := range []int{1, 0xff, 0x100, 0x10000} {
		bodies = append(bodies, bytes.Repeat([]byte{0xc1}, n))
	}
	timeouts := []uint32{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 1<<32 - 1}
	reqs := []batchRequest{{}, {List: []batchItem{}}}
	reps := []batchReply{{}, {List: []batchAnswer{}}}
	for _, n := range []int{1, 15, 16, maxBatch} {
		var req batchRequest
		var rep batchReply
		for i := range n {
			// Every size once in each list, then small ones: the lists
			// stay a few hundred KiB.
			j := i % 4
			if i < 2*len(bodies) && n <= 16 {
				j = i
			}
			req.List = append(req.List, batchItem{Kind: strs[j%len(strs)], Body: bodies[j%len(bodies)], TimeoutMS: timeouts[i%len(timeouts)]})
			rep.List = append(rep.List, batchAnswer{Body: bodies[(j+1)%len(bodies)], Code: strs[(j+2)%len(strs)], Message: strs[j%len(strs)]})
		}
		reqs, reps = append(reqs, req), append(reps, rep)
	}
	return reqs, reps
}

// TestBatchEncoding: a batch encoded by hand decodes by reflection to the
// batch, and by its own decoder too; and its decoder reads what reflection
// encodes (a member that encodes batches by reflection).
func TestBatchEncoding(t *testing.T) {
	reqs, reps := sampleBatches()
	requireBatchCodec[batchRequest, plainBatchRequest](t, "request", reqs)
	requireBatchCodec[batchReply, plainBatchReply](t, "reply", reps)
}

// encodedBatch is a batch that encodes itself.
type encodedBatch interface {
	appendMsgpack(b []byte) []byte
	encodedSize() int
}

// requireBatchCodec checks batches encoded by hand against P, their
// reflection twin: reflection decodes them, their own decoder decodes them
// and what reflection encodes of them.
func requireBatchCodec[T encodedBatch, P any](t *testing.T, what string, batches []T) {
	t.Helper()
	for i, batch := range batches {
		b := batch.appendMsgpack(nil)
		require.LessOrEqual(t, len(b), batch.encodedSize(), "%s %d", what, i)
		require.NoError(t, msgpackcheck.WellFormed(b))
		var plain P
		require.NoError(t, msgpack.Unmarshal(b, &plain))
		require.Equal(t, fmt.Sprint(batch), fmt.Sprint(plain), "%s %d by reflection", what, i)
		var got T
		require.NoError(t, msgpack.Unmarshal(b, &got))
		require.Equal(t, fmt.Sprint(batch), fmt.Sprint(got), "%s %d by its decoder", what, i)
		fromPlain, err := msgpack.Marshal(plain)
		require.NoError(t, err)
		var again T
		require.NoError(t, msgpack.Unmarshal(fromPlain, &again))
		require.Equal(t, fmt.Sprint(batch), fmt.Sprint(again), "%s %d encoded by reflection", what, i)
	}
}

// TestBatchDecodingRefuses: what is not a batch, or one longer than
// maxBatch, is an error, found before the list is made.
func TestBatchDecodingRefuses(t *testing.T) {
	long := batchRequest{List: make([]batchItem, maxBatch+1)}
	for _, b := range [][]byte{
		long.appendMsgpack(nil),
		{0x81, 0xa1, 'l', 0xa1, 'x'},                   // the list is a string
		{0x91, 0x90},                                   // an array, not a map
		{0x81, 0x01, 0x90},                             // a key that is no string
		{0x81, 0xa1, 'l', 0x91, 0x81, 0xa1, 'k', 0x01}, // a kind that is no string
		{0x81, 0xa1, 'l', 0x91, 0x81, 0xa1, 't', 0xa1, 'x'},
	} {
		var req batchRequest
		require.Error(t, msgpack.Unmarshal(b, &req), "% x", b)
	}
	var rep batchReply
	require.Error(t, msgpack.Unmarshal(batchReply{List: make([]batchAnswer, maxBatch+1)}.appendMsgpack(nil), &rep))
}

// FuzzBatchDecode: the batches' decoders never panic, and what they accept
// reflection reads alike.
func FuzzBatchDecode(f *testing.F) {
	f.Add(batchRequest{}.appendMsgpack(nil))
	f.Add(batchRequest{List: []batchItem{{Kind: "replicate", Body: []byte{0x80}, TimeoutMS: 2000}, {Kind: "settle"}}}.appendMsgpack(nil))
	f.Add(batchReply{List: []batchAnswer{{Body: []byte{0xc0}}, {Code: "stale", Message: "newer epoch"}}}.appendMsgpack(nil))
	f.Add([]byte{0x80})
	f.Add([]byte{0xc0})
	f.Add([]byte{0x82, 0xa1, 'x', 0x01, 0xa1, 'l', 0x91, 0x83, 0xa1, 'k', 0xa3, 'a', 'b', 'c', 0xa1, 'b', 0xc4, 0x01, 0x00, 0xa1, 't', 0xcc, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if msgpackcheck.WellFormed(b) != nil {
			return // the transport refuses it before any decoder sees it
		}
		requireReflectionAgrees[batchRequest, plainBatchRequest](t, b)
		requireReflectionAgrees[batchReply, plainBatchReply](t, b)
	})
}

// requireReflectionAgrees checks that what T's decoder accepts of b,
// reflection decodes alike into P.
func requireReflectionAgrees[T, P any](t *testing.T, b []byte) {
	t.Helper()
	var got T
	if msgpack.Unmarshal(b, &got) != nil {
		return
	}
	var plain P
	require.NoError(t, msgpack.Unmarshal(b, &plain))
	require.Equal(t, fmt.Sprint(plain), fmt.Sprint(got))
}
