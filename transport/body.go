package transport

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/msgpackcheck"
)

// DecodeBody decodes a peer's msgpack body into v. The body is first
// checked to be one value whose every declared length fits in the bytes
// that follow (msgpackcheck.WellFormed), so that a header claiming
// gigabytes is refused before the decoder sizes anything by it. Whatever
// carries bodies of its own inside a call (a batch of requests) decodes
// them with it too.
func DecodeBody(body []byte, v any) error {
	if err := msgpackcheck.WellFormed(body); err != nil {
		return err
	}
	return msgpack.Unmarshal(body, v)
}

// RequestDecoder returns the decode function that a Handler is given for
// a request of kind whose body is body: it decodes with DecodeBody, and
// its errors reach the caller with Code CodeBadRequest.
func RequestDecoder(kind string, body []byte) func(v any) error {
	return func(v any) error {
		if err := DecodeBody(body, v); err != nil {
			return &decodeError{kind: kind, err: err}
		}
		return nil
	}
}

// DecodeResponse decodes body, the answer to a call of kind made to the
// member at addr, into resp with DecodeBody, as Client.Call does; a nil
// resp discards it. Its error says which call's answer did not decode.
func DecodeResponse(kind, addr string, body []byte, resp any) error {
	if resp == nil {
		return nil
	}
	if err := DecodeBody(body, resp); err != nil {
		return fmt.Errorf("transport: decoding %q response from %s: %w", kind, addr, err)
	}
	return nil
}

// encodeBody encodes a request's or an answer's body; one encoded already
// (a non-nil msgpack.RawMessage) goes as it is, not copied through an
// encoder.
func encodeBody(v any) ([]byte, error) {
	if raw, ok := v.(msgpack.RawMessage); ok && raw != nil {
		return raw, nil
	}
	return msgpack.Marshal(v)
}
