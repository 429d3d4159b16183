package pool

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// TestCopyRequestEncoding: a copyRequest encoded by hand decodes, by
// reflection as every member decodes it, to the request, for every size
// of record and list of checkpoints the encoding distinguishes.
func TestCopyRequestEncoding(t *testing.T) {
	var keeps [][]uint64
	keeps = append(keeps, nil, []uint64{}, []uint64{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000, 1<<64 - 1})
	long := make([]uint64, 70000)
	for i := range long {
		long[i] = uint64(i) * 977
	}
	keeps = append(keeps, long[:15], long[:16], long[:0xffff], long)
	for _, size := range []int{-1, 0, 1, 0xff, 0x100, 0xffff, 0x10000} {
		var rec []byte
		if size >= 0 {
			rec = bytes.Repeat([]byte{0xa5}, size)
		}
		for _, keep := range keeps {
			req := copyRequest{Record: rec, Keep: keep}
			b := req.appendMsgpack(nil)
			require.LessOrEqual(t, len(b), req.encodedSize())
			var got copyRequest
			require.NoError(t, msgpack.Unmarshal(b, &got))
			require.Equal(t, len(req.Record), len(got.Record))
			require.True(t, bytes.Equal(req.Record, got.Record))
			require.Equal(t, len(req.Keep), len(got.Keep))
			for i := range req.Keep {
				require.Equal(t, req.Keep[i], got.Keep[i])
			}
		}
	}
}
