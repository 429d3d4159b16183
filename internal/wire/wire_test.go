package wire

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func sampleFrames() []Frame {
	var key [KeyLen]byte
	var sid [SessionIDLen]byte
	var nonce [NonceLen]byte
	for i := range key {
		key[i] = byte(i)
		nonce[i] = byte(255 - i)
	}
	copy(sid[:], "0123456789abcdef")
	return []Frame{
		Data{Seq: 1 << 40, Payload: []byte("hello")},
		Ack{Limit: 100, Release: 50},
		Ack{Limit: 7, Release: 7, FinSeen: true},
		Ping{Opaque: 42},
		Pong{Opaque: 42},
		Fin{End: 99},
		Close{End: 12345},
		Abort{Code: CodeNotRetained, Reason: "position 5 not retained"},
		Refused{Code: CodeUnknownSession, Reason: ""},
		Refused{Code: CodeMoved, Reason: "moved", RedirectName: "node-b", RedirectAddr: "10.0.0.2:7000"},
		Hello{MinVersion: 1, MaxVersion: 1, Window: 1 << 20, Retention: 1 << 21,
			KeepAliveMillis: 1000, KeepAliveTimeoutMillis: 5000, Key: key},
		Hello{MinVersion: 1, MaxVersion: 3, Resume: true, Window: 4096, Retention: 8192,
			KeepAliveMillis: 10, KeepAliveTimeoutMillis: 11, Session: sid, Nonce: nonce, Epoch: 3, Origin: "node-a"},
		Welcome{Version: 1, Session: sid, Key: key, Window: 1, Retention: 2,
			KeepAliveMillis: 100, KeepAliveTimeoutMillis: 500},
		Welcome{Version: 1, Flags: WelcomePool, Session: sid, Key: key, Window: 1, Retention: 2,
			KeepAliveMillis: 100, KeepAliveTimeoutMillis: 500, Epoch: 1, Member: "member-a"},
		Challenge{Nonce: nonce},
		Proof{MAC: key, Positions: Positions{Received: 1, Limit: 2, Release: 3, Retained: 3, Written: 4}},
		Proof{MAC: key, Positions: Positions{Received: 9}, Known: []uint64{0, 5, 9}},
		Resumed{MAC: nonce, Positions: Positions{Received: 5, Limit: 6, Release: 7, Retained: 7, Written: 8}},
		Resumed{MAC: nonce, Positions: Positions{Received: 5, Limit: 6, Release: 7, Written: 8},
			Epoch: 9, Flags: ResumedRestored, Member: "member-c"},
		Members{List: []MemberInfo{{Name: "a", Addr: "127.0.0.1:1", Sessions: 3, BytesPerSec: 1 << 40}, {Name: "b", Addr: "[::1]:2", Draining: true, Balancing: true}}},
		Members{List: []MemberInfo{}},
		Move{Reason: MoveDrain, Name: "b", Addr: "127.0.0.1:2"},
		Mark{Seq: 1, Out: 2, In: 3},
		Verify{From: 10, To: 20, CRC: 0xdeadbeef},
		Extension{Kind: 0x90, Flags: 3, Body: []byte{1, 2, 3}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range sampleFrames() {
		t.Run(f.Type().String(), func(t *testing.T) {
			enc := AppendFrame(nil, f)
			got, err := ReadFrame(bytes.NewReader(enc), nil)
			require.NoError(t, err)
			require.Equal(t, normalize(f), normalize(got))
			require.Equal(t, enc, AppendFrame(nil, got))
		})
	}
}

// normalize makes empty and nil byte slices compare equal.
func normalize(f Frame) Frame {
	switch v := f.(type) {
	case Data:
		v.Payload = append([]byte{}, v.Payload...)
		return v
	case Extension:
		v.Body = append([]byte{}, v.Body...)
		return v
	case Members:
		v.List = append([]MemberInfo{}, v.List...)
		return v
	}
	return f
}

func TestParseHeaderRejects(t *testing.T) {
	cases := map[string][]byte{
		"short":             {1, 0, 0},
		"unknown type":      {0x42, 0, 0, 0, 0, 0, 0, 8},
		"reserved set":      {byte(TypePing), 0, 1, 0, 0, 0, 0, 8},
		"undefined flag":    {byte(TypePing), 1, 0, 0, 0, 0, 0, 8},
		"ack bad flag":      {byte(TypeAck), 2, 0, 0, 0, 0, 0, 16},
		"ping wrong len":    {byte(TypePing), 0, 0, 0, 0, 0, 0, 9},
		"data empty":        {byte(TypeData), 0, 0, 0, 0, 0, 0, 8},
		"data too large":    {byte(TypeData), 0, 0, 0, 0, 4, 0, 9},
		"huge length":       {byte(TypeData), 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
		"extension too big": {0x80, 0, 0, 0, 0, 1, 0, 1},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseHeader(b)
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	hello := AppendFrame(nil, Hello{MinVersion: 1, MaxVersion: 1, Window: 1 << 20, Retention: 1 << 21,
		KeepAliveMillis: 1000, KeepAliveTimeoutMillis: 5000})
	badVersion := append([]byte{}, hello...)
	badVersion[HeaderLen] = 2 // min > max
	badMode := append([]byte{}, hello...)
	badMode[HeaderLen+2] = 1 // resume mode with a new-session length
	badKeepAlive := append([]byte{}, hello...)
	badKeepAlive[HeaderLen+14], badKeepAlive[HeaderLen+15] = 0, 1
	badReason := AppendFrame(nil, Abort{Code: 1, Reason: "x"})
	badReason[len(badReason)-1] = 0xff
	for name, b := range map[string][]byte{
		"version": badVersion, "mode": badMode, "keepalive": badKeepAlive, "reason": badReason,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(b), nil)
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestReadFrameTruncated(t *testing.T) {
	enc := AppendFrame(nil, Data{Seq: 1, Payload: []byte("abcdef")})
	_, err := ReadFrame(bytes.NewReader(enc[:len(enc)-1]), nil)
	require.True(t, errors.Is(err, io.ErrUnexpectedEOF), "got %v", err)
}

func TestReasonTruncated(t *testing.T) {
	long := strings.Repeat("é", MaxReason) // 2 bytes per rune
	enc := AppendFrame(nil, Abort{Code: CodeInternal, Reason: long})
	f, err := ReadFrame(bytes.NewReader(enc), nil)
	require.NoError(t, err)
	r := f.(Abort).Reason
	require.LessOrEqual(t, len(r), MaxReason)
	require.True(t, strings.HasPrefix(long, r))
}

func TestPutDataHeader(t *testing.T) {
	var hb [16]byte
	PutDataHeader(&hb, 77, 5)
	want := AppendFrame(nil, Data{Seq: 77, Payload: []byte("12345")})
	require.Equal(t, want[:16], hb[:])
}

// stingyReader serves bytes and counts them, to show how much of a stream a
// reader took.
type stingyReader struct {
	b    []byte
	read int
}

func (r *stingyReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b, r.read = r.b[n:], r.read+n
	return n, nil
}

// TestReadFrameOfChecksTypeFirst: a handshake reader that expects one frame
// type turns away any other from its header alone: it reads the 8 header
// bytes, not the body, and allocates nothing for it.
func TestReadFrameOfChecksTypeFirst(t *testing.T) {
	big := AppendFrame(nil, Data{Seq: 0, Payload: make([]byte, MaxPayload)})
	r := &stingyReader{b: big}
	var err error
	// Bytes, not allocation counts: the race detector and the runtime add
	// small allocations of their own; a body would be MaxPayload bytes.
	const runs = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		r = &stingyReader{b: big}
		_, err = ReadFrameOf(r, TypeHello)
	}
	runtime.ReadMemStats(&after)
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorIs(t, err, ErrUnexpected)
	require.Contains(t, err.Error(), "DATA")
	require.Contains(t, err.Error(), "HELLO")
	require.Equal(t, HeaderLen, r.read, "only the header was read")
	require.Less(t, perRun, uint64(MaxPayload/16), "no body was allocated")

	// The expected types go through, and so does a REFUSED when asked for.
	for _, f := range []Frame{
		Challenge{Nonce: [NonceLen]byte{1}},
		Refused{Code: CodeBusy, Reason: "full"},
	} {
		got, err := ReadFrameOf(bytes.NewReader(AppendFrame(nil, f)), TypeChallenge, TypeRefused)
		require.NoError(t, err)
		require.Equal(t, f, got)
	}
	// A bad header is still refused as one.
	_, err = ReadFrameOf(bytes.NewReader([]byte{byte(TypeHello), 0, 1, 0, 0, 0, 0, 48}), TypeHello)
	require.ErrorIs(t, err, ErrMalformed)
	require.NotErrorIs(t, err, ErrUnexpected)
}
