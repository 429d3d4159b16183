package pool

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/migratory/mtcp/internal/msgpackcheck"
)

// batchBody is a msgpack encoding carried inside another message: the body of
// one request or answer of a batch. It encodes as a msgpack binary, and
// decodes only if it is empty or one well-formed msgpack value
// (msgpackcheck.WellFormed), so that decoding it later never sizes a
// buffer by a length its bytes do not back.
type batchBody []byte

// DecodeMsgpack implements msgpack.CustomDecoder.
func (b *batchBody) DecodeMsgpack(d *msgpack.Decoder) error {
	raw, err := d.DecodeBytes()
	if err != nil {
		return err
	}
	if len(raw) > 0 {
		if err := msgpackcheck.WellFormed(raw); err != nil {
			return fmt.Errorf("batched body: %w", err)
		}
	}
	*b = raw
	return nil
}
