package pool

import (
	"encoding/binary"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Batches carry the copies a member sends by the thousand a second while
// its sessions checkpoint or arrive. Encoded and decoded by reflection,
// their lists took 5% of a draining member's CPU, and the encoder's
// buffer grew by copying for each. They encode themselves in one
// allocation of their exact size, as the maps msgpack would make of them
// (a member decodes them by reflection as before), and decode themselves
// from those maps.

// appendMsgpack appends the request, encoded, to b.
func (r batchRequest) appendMsgpack(b []byte) []byte {
	b = append(b, 0x81, 0xa1, 'l')
	if r.List == nil {
		return append(b, 0xc0)
	}
	b = appendMsgpackArrayLen(b, len(r.List))
	for _, it := range r.List {
		b = append(b, 0x83, 0xa1, 'k')
		b = appendMsgpackStr(b, it.Kind)
		b = append(b, 0xa1, 'b')
		b = appendMsgpackBin(b, it.Body)
		b = append(b, 0xa1, 't')
		b = appendMsgpackUint(b, uint64(it.TimeoutMS))
	}
	return b
}

// encodedSize bounds the length of the request, encoded.
func (r batchRequest) encodedSize() int {
	n := 8
	for _, it := range r.List {
		n += 24 + len(it.Kind) + len(it.Body)
	}
	return n
}

// appendMsgpack appends the reply, encoded, to b.
func (r batchReply) appendMsgpack(b []byte) []byte {
	b = append(b, 0x81, 0xa1, 'l')
	if r.List == nil {
		return append(b, 0xc0)
	}
	b = appendMsgpackArrayLen(b, len(r.List))
	for _, a := range r.List {
		b = append(b, 0x83, 0xa1, 'b')
		b = appendMsgpackBin(b, a.Body)
		b = append(b, 0xa1, 'c')
		b = appendMsgpackStr(b, a.Code)
		b = append(b, 0xa1, 'm')
		b = appendMsgpackStr(b, a.Message)
	}
	return b
}

// encodedSize bounds the length of the reply, encoded.
func (r batchReply) encodedSize() int {
	n := 8
	for _, a := range r.List {
		n += 24 + len(a.Body) + len(a.Code) + len(a.Message)
	}
	return n
}

// DecodeMsgpack decodes the request from the map appendMsgpack makes
// (keys in any order; unknown keys are skipped).
func (r *batchRequest) DecodeMsgpack(dec *msgpack.Decoder) error {
	return decodeBatchList(dec, &r.List, "batch request", func(it *batchItem, key string) (err error) {
		switch key {
		case "k":
			it.Kind, err = dec.DecodeString()
		case "b":
			it.Body, err = dec.DecodeBytes()
		case "t":
			it.TimeoutMS, err = dec.DecodeUint32()
		default:
			err = dec.Skip()
		}
		return err
	})
}

// DecodeMsgpack decodes the reply from the map appendMsgpack makes.
func (r *batchReply) DecodeMsgpack(dec *msgpack.Decoder) error {
	return decodeBatchList(dec, &r.List, "batch answer", func(a *batchAnswer, key string) (err error) {
		switch key {
		case "b":
			a.Body, err = dec.DecodeBytes()
		case "c":
			a.Code, err = dec.DecodeString()
		case "m":
			a.Message, err = dec.DecodeString()
		default:
			err = dec.Skip()
		}
		return err
	})
}

// decodeBatchList decodes a map whose key "l" holds a list (nil: none) of
// at most maxBatch maps into *list, each element's values decoded by field;
// other keys are skipped. what names an element in errors.
func decodeBatchList[T any](dec *msgpack.Decoder, list *[]T, what string, field func(e *T, key string) error) error {
	*list = nil
	return decodeMap(dec, func(key string) error {
		if key != "l" {
			return dec.Skip()
		}
		if err := refuseExt(dec); err != nil {
			return err
		}
		n, err := dec.DecodeArrayLen()
		if err != nil || n < 0 {
			return err
		}
		if n > maxBatch {
			return fmt.Errorf("%d requests in one call, at most %d", n, maxBatch)
		}
		*list = make([]T, n)
		for i := range *list {
			e := &(*list)[i]
			if err := decodeMap(dec, func(key string) error { return field(e, key) }); err != nil {
				return fmt.Errorf("%s %d: %w", what, i, err)
			}
		}
		return nil
	})
}

// decodeMap decodes a map (nil: empty) with string keys, calling value
// for each key to decode its value.
func decodeMap(dec *msgpack.Decoder, value func(key string) error) error {
	if err := refuseExt(dec); err != nil {
		return err
	}
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for range n {
		key, err := dec.DecodeString()
		if err != nil {
			return err
		}
		if err := value(key); err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
	}
	return nil
}

// refuseExt refuses an extension where a map or a list is due: msgpack's
// decoder reads the map or list an extension wraps, which reflection, and
// so a member decoding batches by reflection, refuses.
func refuseExt(dec *msgpack.Decoder) error {
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if msgpcode.IsExt(c) {
		return fmt.Errorf("msgpack: unexpected extension (code %#x) where a map or a list is due", c)
	}
	return nil
}

// appendMsgpackStr appends s as a msgpack str.
func appendMsgpackStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= 0xff:
		b = append(b, 0xd9, byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// appendMsgpackArrayLen appends the header of an array of n elements.
func appendMsgpackArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}
