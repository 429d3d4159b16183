package pool

import (
	"errors"
	"fmt"
	"net"
)

// ErrNoKey is returned by New when Config.Key is missing or shorter than
// MinKeyLen bytes.
var ErrNoKey = fmt.Errorf("pool: a key of at least %d bytes is required", MinKeyLen)

// ErrClosed is returned by operations on a Pool that has been shut down. It
// wraps net.ErrClosed.
var ErrClosed = fmt.Errorf("pool: shut down: %w", net.ErrClosed)

// errBadConfig is wrapped by New's errors for an invalid Config.
var errBadConfig = errors.New("pool: invalid config")

// errBadMeta is wrapped by the errors of member metadata that does not
// decode or names a bad address.
var errBadMeta = errors.New("pool: bad member metadata")
