package transport

import (
	"encoding/binary"
	"time"
)

// Message types: the first byte of a frame's plaintext (doc.go, "Messages").
const (
	msgRequest  byte = 1
	msgResponse byte = 2
	msgError    byte = 3
)

// requestHeader is the length of a request before its kind.
const requestHeader = 1 + 4 + 1

// request is a decoded request message.
type request struct {
	TimeoutMS uint32 // time the caller waits, in milliseconds; 0: not said
	Kind      string
	Body      []byte // msgpack; aliases the frame
}

// appendRequest appends a request message to dst.
func appendRequest(dst []byte, timeoutMS uint32, kind string, body []byte) []byte {
	dst = append(dst, msgRequest)
	dst = binary.BigEndian.AppendUint32(dst, timeoutMS)
	dst = append(dst, byte(len(kind)))
	dst = append(dst, kind...)
	return append(dst, body...)
}

// setRequestTimeout rewrites the timeout of an encoded request.
func setRequestTimeout(msg []byte, d time.Duration) {
	ms := (d + time.Millisecond - 1).Milliseconds() // rounded up: the server never ends first
	switch {
	case ms < 1:
		ms = 1
	case ms > 1<<32-1:
		ms = 1<<32 - 1
	}
	binary.BigEndian.PutUint32(msg[1:5], uint32(ms))
}

// parseRequest decodes a request message.
func parseRequest(p []byte) (request, error) {
	var r request
	if len(p) < requestHeader || p[0] != msgRequest {
		return r, protocolError("malformed request")
	}
	r.TimeoutMS = binary.BigEndian.Uint32(p[1:5])
	n := int(p[5])
	if n == 0 || len(p) < requestHeader+n {
		return r, protocolError("malformed request kind")
	}
	r.Kind = string(p[requestHeader : requestHeader+n])
	r.Body = p[requestHeader+n:]
	return r, nil
}

// response is a decoded response message: a body, or an error.
type response struct {
	Body []byte // msgpack; aliases the frame
	Err  *RemoteError
}

// appendResponse appends a successful response message to dst.
func appendResponse(dst, body []byte) []byte {
	return append(append(dst, msgResponse), body...)
}

// appendErrorResponse appends an error response to dst, cutting the
// message so that the whole stays within limit bytes.
func appendErrorResponse(dst []byte, e *RemoteError, limit int) []byte {
	e = truncateRemote(e.Code, e.Message)
	e.Message = cutText(e.Message, max(limit-2-len(e.Code), 0))
	dst = append(dst, msgError, byte(len(e.Code)))
	dst = append(dst, e.Code...)
	return append(dst, e.Message...)
}

// parseResponse decodes a response message.
func parseResponse(p []byte) (response, error) {
	var r response
	if len(p) == 0 {
		return r, protocolError("empty response")
	}
	switch p[0] {
	case msgResponse:
		r.Body = p[1:]
		return r, nil
	case msgError:
		if len(p) < 2 {
			return r, protocolError("malformed error response")
		}
		n := int(p[1])
		if n == 0 || len(p) < 2+n || len(p)-2-n > maxErrorMessage {
			return r, protocolError("malformed error response")
		}
		r.Err = &RemoteError{Code: string(p[2 : 2+n]), Message: string(p[2+n:])}
		return r, nil
	}
	return r, protocolError("unknown response type %d", p[0])
}
