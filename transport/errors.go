package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"unicode/utf8"
)

// Sentinel errors. Errors returned by this package wrap them; test with errors.Is.
var (
	// ErrNoKey: the configured pool key is missing or shorter than MinKeyLen bytes.
	ErrNoKey = errors.New("transport: pool key missing or shorter than 16 bytes")
	// ErrAuth: the handshake's mutual authentication failed; the two ends do
	// not hold the same pool key (or someone tampered with the handshake).
	ErrAuth = errors.New("transport: handshake authentication failed (pool keys differ?)")
	// ErrTooLarge: a message exceeds the sender's or the receiver's MaxMessage.
	// A *RemoteError with Code CodeTooLarge matches it too.
	ErrTooLarge = errors.New("transport: message too large")
	// ErrUnknownKind: the server has no handler for the request's kind.
	// A *RemoteError with Code CodeUnknownKind matches it.
	ErrUnknownKind = errors.New("transport: unknown request kind")
	// ErrProtocol: the peer broke the protocol (bad magic, malformed message,
	// a frame that fails authentication, a request while one is running).
	ErrProtocol = errors.New("transport: protocol error")
	// ErrVersion: the peer speaks a protocol version this package does not.
	ErrVersion = errors.New("transport: unsupported protocol version")
	// ErrBusy: the server turned the connection away without reading the
	// request, to make room (see Config.MaxConns and Config.MaxHandshakes);
	// the request may be sent again. A Client does, until the call's
	// deadline.
	ErrBusy = errors.New("transport: server busy, request not read")
	// ErrClosed: the Client or Server is closed. It wraps net.ErrClosed.
	ErrClosed = fmt.Errorf("transport: closed: %w", net.ErrClosed)
)

// Codes of the errors that the transport itself reports to a caller as a
// *RemoteError. Handlers may use their own codes (see Handler).
const (
	// CodeError is the code of a handler error that does not name one.
	CodeError = "error"
	// CodeUnknownKind: no handler is registered for the kind.
	CodeUnknownKind = "unknown_kind"
	// CodeBadRequest: the request body did not decode into the handler's type.
	CodeBadRequest = "bad_request"
	// CodeTooLarge: the response exceeds the caller's or the server's MaxMessage.
	CodeTooLarge = "too_large"
	// CodeInternal: the handler panicked or its response could not be encoded.
	CodeInternal = "internal"
	// CodeDeadlineExceeded: the handler failed with context.DeadlineExceeded
	// (typically its context's deadline, which is the caller's).
	CodeDeadlineExceeded = "deadline_exceeded"
	// CodeCanceled: the handler failed with context.Canceled (typically
	// because the server is closing).
	CodeCanceled = "canceled"
)

// maxCodeLen and maxErrorMessage bound a RemoteError on the wire.
const (
	maxCodeLen      = 255
	maxErrorMessage = 8 << 10
)

// RemoteError is an error returned by the remote handler (or by the remote
// server on its behalf). It is errors.As-able; errors.Is matches another
// *RemoteError with the same Code, and the sentinel of a transport code
// (ErrUnknownKind for CodeUnknownKind, ErrTooLarge for CodeTooLarge,
// context.DeadlineExceeded and context.Canceled for CodeDeadlineExceeded
// and CodeCanceled).
type RemoteError struct {
	Code    string // the handler's or the transport's code (Code*)
	Message string // the error's text
}

// Error gives the code and message.
func (e *RemoteError) Error() string {
	return fmt.Sprintf("transport: remote error [%s]: %s", e.Code, e.Message)
}

// Is reports whether target is a *RemoteError with the same Code, or the
// sentinel error of this error's Code.
func (e *RemoteError) Is(target error) bool {
	if t, ok := target.(*RemoteError); ok {
		return t != nil && t.Code == e.Code
	}
	switch e.Code {
	case CodeUnknownKind:
		return target == ErrUnknownKind
	case CodeTooLarge:
		return target == ErrTooLarge
	case CodeDeadlineExceeded:
		return target == context.DeadlineExceeded
	case CodeCanceled:
		return target == context.Canceled
	}
	return false
}

// coder is implemented by handler errors that choose their RemoteError code.
type coder interface{ TransportCode() string }

// RemoteErrorOf returns the *RemoteError that the caller of a Handler
// sees for err, the handler's error, as described at Handler: a
// *RemoteError keeps its Code and Message; else the Code is what err (or
// one it wraps) returns from TransportCode, else CodeDeadlineExceeded or
// CodeCanceled for the context errors, else CodeError, and the Message is
// err's text. Code and Message are cut to what the wire carries.
func RemoteErrorOf(err error) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		return truncateRemote(re.Code, re.Message)
	}
	code := CodeError
	var c coder
	switch {
	case errors.As(err, &c) && c.TransportCode() != "":
		code = c.TransportCode()
	case errors.Is(err, context.DeadlineExceeded):
		code = CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = CodeCanceled
	}
	return truncateRemote(code, err.Error())
}

// truncateRemote bounds the code and message to their wire limits.
func truncateRemote(code, msg string) *RemoteError {
	if code == "" {
		code = CodeError
	}
	return &RemoteError{Code: cutText(code, maxCodeLen), Message: cutText(msg, maxErrorMessage)}
}

// cutText returns s cut to at most n bytes, at a rune boundary.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// decodeError is what the decode function given to a Handler returns when
// the body does not fit the value; it reaches the caller as CodeBadRequest.
type decodeError struct {
	kind string
	err  error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("decoding %q request: %v", e.kind, e.err)
}

func (e *decodeError) Unwrap() error { return e.err }

// TransportCode returns CodeBadRequest.
func (e *decodeError) TransportCode() string { return CodeBadRequest }

// protocolError returns an error wrapping ErrProtocol with a reason.
func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}
