package snapshot

import "errors"

// Errors of decoding and storing records.
var (
	// ErrMalformed means a record's bytes are not a record.
	ErrMalformed = errors.New("snapshot: malformed record")
	// ErrTooLarge means a record exceeds its bound, or a store is full.
	ErrTooLarge = errors.New("snapshot: record too large")
	// ErrStaleEpoch means a record is of an older epoch than the one kept.
	ErrStaleEpoch = errors.New("snapshot: stale epoch")
)
