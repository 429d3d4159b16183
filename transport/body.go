package transport

import (
	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/msgpackcheck"
)

// decodeBody decodes a peer's msgpack body into v. The body is first
// checked to be one value whose every declared length fits in the bytes
// that follow (msgpackcheck.WellFormed), so that a header claiming
// gigabytes is refused before the decoder sizes anything by it.
func decodeBody(body []byte, v any) error {
	if err := msgpackcheck.WellFormed(body); err != nil {
		return err
	}
	return msgpack.Unmarshal(body, v)
}
