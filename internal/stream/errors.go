package stream

import "errors"

// Errors returned by a Stream. Each is fatal for the session.
var (
	// ErrProtocol means the peer broke the protocol's arithmetic.
	ErrProtocol = errors.New("protocol violation")
	// ErrNotRetained means the peer needs bytes that were already freed.
	ErrNotRetained = errors.New("resume position not retained")
	// ErrWriteAfterEnd means Write was called after CloseWrite or Close.
	ErrWriteAfterEnd = errors.New("write after end of stream")
	// ErrDiverged means output regenerated after a restore differs from
	// what the peer received: other bytes, or an end at another position.
	ErrDiverged = errors.New("regenerated output differs from what the peer received")
)

// ErrNoMemory is returned by Write when it took less than it could have
// because the Memory budget is spent: the caller waits for memory to be
// given back.
var ErrNoMemory = errors.New("stream: memory budget spent")
