// Package snapshot holds the checkpoint record of a session (M-TCP's
// exported connection state): what a successor server needs to take the
// session over, its msgpack encoding, and a store that keeps the recent
// checkpoints of many sessions.
package snapshot

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/msgpackcheck"
)

// Version is the encoding version written by Marshal.
const Version = 1

// MaxState is the default largest application state a record may carry.
const MaxState = 8 << 20

// Params are the session settings a successor restores with the state.
type Params struct {
	ClientWindow           uint32 `msgpack:"w"`
	ClientRetention        uint32 `msgpack:"r"`
	KeepAliveMillis        uint16 `msgpack:"k"`
	KeepAliveTimeoutMillis uint16 `msgpack:"t"`
}

// Record is one checkpoint of a session: the application's state after it
// consumed InPos bytes of input and wrote OutPos bytes of output, with the
// session's identity and secret.
type Record struct {
	Session [16]byte `msgpack:"id"`
	Epoch   uint64   `msgpack:"e"`  // the server generation that took it
	Seq     uint64   `msgpack:"s"`  // checkpoint number in the session; 0 is the implicit start
	Secret  Secret   `msgpack:"k"`  // the session secret; it prints redacted
	InPos   uint64   `msgpack:"in"` // input consumed by the application
	OutPos  uint64   `msgpack:"out"`
	State   []byte   `msgpack:"st"`
	Params  Params   `msgpack:"p"`
	Origin  string   `msgpack:"o"` // the member that took it
}

// Marshal encodes r: a version byte, then msgpack (see record_codec.go).
// It does not fail; the error is kept for callers written against a
// reflective encoder.
func (r *Record) Marshal() ([]byte, error) {
	return r.appendMsgpack(append(make([]byte, 0, r.encodedSize()), Version)), nil
}

// Unmarshal decodes a record of at most maxBytes (0: MaxState plus room
// for the rest), refusing unknown versions and trailing bytes.
func Unmarshal(b []byte, maxBytes int) (*Record, error) {
	if maxBytes <= 0 {
		maxBytes = MaxState + 4096
	}
	if len(b) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(b), maxBytes)
	}
	if len(b) < 1 || b[0] != Version {
		return nil, fmt.Errorf("%w: unknown version", ErrMalformed)
	}
	if err := msgpackcheck.WellFormed(b[1:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var r Record
	if !decodeCanonical(b[1:], &r) {
		r = Record{}
		if err := msgpack.Unmarshal(b[1:], &r); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	if len(r.Origin) > 64 {
		return nil, fmt.Errorf("%w: origin name of %d bytes", ErrMalformed, len(r.Origin))
	}
	return &r, nil
}

// Clone returns a deep copy of r.
func (r *Record) Clone() *Record {
	c := *r
	c.State = append([]byte(nil), r.State...)
	return &c
}

// Choose returns the newest record a client can resume from, or nil: its
// output position at most what the client received (the client has every
// byte before it) and one the client can check regenerated output from
// (known, or nil for any), and its input position at least the first input
// byte the client still retains (the client can replay every byte after it).
// Newest means the highest epoch, then the highest sequence number.
func Choose(recs []*Record, clientReceived, clientRetained uint64, known func(out uint64) bool) *Record {
	var best *Record
	for _, r := range recs {
		if r.OutPos > clientReceived || r.InPos < clientRetained {
			continue
		}
		if known != nil && r.OutPos != clientReceived && !known(r.OutPos) {
			continue
		}
		if best == nil || r.Epoch > best.Epoch || (r.Epoch == best.Epoch && r.Seq > best.Seq) {
			best = r
		}
	}
	return best
}
