package wire

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("mtcp/wire: malformed frame")

// ErrUnexpected is wrapped, with ErrMalformed, by ReadFrameOf's error for a
// frame of a type the reader does not expect at that point.
var ErrUnexpected = errors.New("unexpected frame type")

// malformed returns an error wrapping ErrMalformed with a reason.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
