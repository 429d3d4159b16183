package transport

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// A Handler serves one kind of request. from is the calling member's
// NodeName, as it sent it in the authenticated handshake (any holder of the
// pool key can claim any name). decode unmarshals the msgpack request body
// into v and may be called more than once; its errors reach the caller with
// Code CodeBadRequest if returned as they are.
//
// The returned value is sent back msgpack-encoded (nil is fine). A returned
// error reaches the caller as a *RemoteError with the error's text as
// Message; its Code is what the error (or one it wraps) returns from a
// method TransportCode() string, else CodeDeadlineExceeded or CodeCanceled
// for the context errors, else CodeError; a returned *RemoteError keeps
// its Code and Message.
//
// ctx is cancelled when the caller's deadline passes, when the caller gives
// up (its connection closes), and when the Server closes. A panic is
// recovered, logged and reported to the caller with Code CodeInternal.
type Handler func(ctx context.Context, from string, decode func(v any) error) (any, error)

// Handle registers h for requests of kind, replacing any earlier handler;
// a nil h removes it. It may be called at any time, concurrently with
// serving. It panics if kind is empty or longer than MaxKindLen bytes.
func (s *Server) Handle(kind string, h Handler) {
	if kind == "" || len(kind) > MaxKindLen {
		panic(fmt.Sprintf("transport: Handle: kind must be 1 to %d bytes, got %d", MaxKindLen, len(kind)))
	}
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if h == nil {
		delete(s.handlers, kind)
		return
	}
	s.handlers[kind] = h
}

func (s *Server) handler(kind string) Handler {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	return s.handlers[kind]
}

// invoke runs the handler of req and returns the response message, which
// is never longer than limit.
func (s *Server) invoke(ctx context.Context, from string, req request, limit int) []byte {
	h := s.handler(req.Kind)
	if h == nil {
		return appendErrorResponse(nil, &RemoteError{Code: CodeUnknownKind,
			Message: fmt.Sprintf("no handler for kind %q", req.Kind)}, limit)
	}
	body, rerr := RunHandler(ctx, s.log, h, from, req.Kind, req.Body)
	if rerr != nil {
		return appendErrorResponse(nil, rerr, limit)
	}
	if 1+len(body) > limit {
		return appendErrorResponse(nil, &RemoteError{Code: CodeTooLarge,
			Message: fmt.Sprintf("%q response of %d bytes exceeds the limit of %d", req.Kind, 1+len(body), limit)}, limit)
	}
	return appendResponse(make([]byte, 0, 1+len(body)), body)
}

// RunHandler runs h on one request of kind, whose msgpack body is body,
// from the member named from, as a Server does, and returns the
// msgpack-encoded response or the error its caller sees: the handler's
// error as RemoteErrorOf gives it, CodeBadRequest for a body that does
// not decode (RequestDecoder), CodeInternal for a response that does not
// encode or a panic, which is recovered and logged on log (if not nil)
// with its stack.
// Whatever serves requests of its own inside a call (a batch of them)
// answers each with it.
func RunHandler(ctx context.Context, log *slog.Logger, h Handler, from, kind string, body []byte) (resp []byte, rerr *RemoteError) {
	defer func() {
		if p := recover(); p != nil {
			if log != nil {
				log.Error("transport: handler panicked", "kind", kind, "from", from,
					"panic", p, "stack", string(debug.Stack()))
			}
			resp, rerr = nil, &RemoteError{Code: CodeInternal, Message: fmt.Sprintf("handler for %q panicked", kind)}
		}
	}()
	v, err := h(ctx, from, RequestDecoder(kind, body))
	if err != nil {
		return nil, RemoteErrorOf(err)
	}
	resp, err = encodeBody(v)
	if err != nil {
		return nil, &RemoteError{Code: CodeInternal, Message: fmt.Sprintf("encoding %q response: %v", kind, err)}
	}
	return resp, nil
}
