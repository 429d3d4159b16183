package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAppendFieldsIsFields: the fields a MAC covers, appended to a buffer,
// are Fields, and the frames carry them after the MAC.
func TestAppendFieldsIsFields(t *testing.T) {
	p := Proof{Positions: Positions{Received: 7, Written: 9}, Known: []uint64{1, 2, 3}}
	p.MAC[0] = 5
	r := Resumed{Positions: Positions{Received: 3}, Epoch: 4, Flags: ResumedRestored, Member: "member"}
	r.MAC[1] = 6
	prefix := []byte("before")
	require.Equal(t, append([]byte("before"), p.Fields()...), p.AppendFields(prefix[:len(prefix):len(prefix)]))
	require.Equal(t, append([]byte("before"), r.Fields()...), r.AppendFields(prefix[:len(prefix):len(prefix)]))
	require.Equal(t, append(p.MAC[:], p.Fields()...), p.appendBody(nil))
	require.Equal(t, append(r.MAC[:], r.Fields()...), r.appendBody(nil))
	require.Equal(t, positionsLen+2+8*3, len(p.Fields()))
	require.LessOrEqual(t, len(r.Fields()), FieldsRoom)
}
