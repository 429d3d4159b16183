package pool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/migratory/mtcp/internal/msgpackcheck"
)

// Member metadata is a msgpack array whose first element is the format
// version. Version 1 is
//
//	[1, ClientAddr string, ControlAddr string, Sessions uint, BytesPerSec uint, Draining bool]
//
// and version 2 appends Boot uint (this encoder writes version 2). The
// name is not repeated: memberlist carries it. A later version keeps these
// elements and may append more, which earlier decoders skip. Decoding is
// strict otherwise: exact types, bounded lengths, valid addresses, no
// trailing bytes.
const (
	metaVersion  = 2
	metaFieldsV1 = 6
	metaFieldsV2 = 7
	// maxAddrLen bounds each address, so that the whole metadata stays
	// within 321 bytes, far below memberlist.MetaMaxSize.
	maxAddrLen = 150
	// maxSessions bounds Sessions so that it fits an int everywhere.
	maxSessions = math.MaxInt32
	// maxSkipDepth bounds the nesting of skipped fields of later versions.
	maxSkipDepth = 8
)

// encodeMeta encodes m's published fields.
func encodeMeta(m Member) ([]byte, error) {
	if err := checkAddr("client address", m.ClientAddr); err != nil {
		return nil, err
	}
	if err := checkAddr("control address", m.ControlAddr); err != nil {
		return nil, err
	}
	if m.Sessions < 0 || m.Sessions > maxSessions {
		return nil, fmt.Errorf("%w: sessions %d out of range", errBadMeta, m.Sessions)
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	err := errors.Join(
		enc.EncodeArrayLen(metaFieldsV2),
		enc.EncodeUint(metaVersion),
		enc.EncodeString(m.ClientAddr),
		enc.EncodeString(m.ControlAddr),
		enc.EncodeUint(uint64(m.Sessions)),
		enc.EncodeUint(m.BytesPerSec),
		enc.EncodeBool(m.Draining),
		enc.EncodeUint(m.Boot),
	)
	if err != nil {
		return nil, err
	}
	if buf.Len() > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes", errBadMeta, buf.Len())
	}
	return buf.Bytes(), nil
}

// decodeMeta decodes metadata published by a member. The returned Member
// has no Name.
func decodeMeta(b []byte) (Member, error) {
	var m Member
	if len(b) == 0 {
		return m, fmt.Errorf("%w: empty", errBadMeta)
	}
	if len(b) > memberlist.MetaMaxSize {
		return m, fmt.Errorf("%w: %d bytes", errBadMeta, len(b))
	}
	if err := msgpackcheck.WellFormed(b); err != nil {
		return m, fmt.Errorf("%w: %w", errBadMeta, err)
	}
	r := newMetaReader(b)
	n, err := r.arrayLen()
	if err != nil {
		return m, err
	}
	if n < 1 {
		return m, fmt.Errorf("%w: no version", errBadMeta)
	}
	v, err := r.uint(math.MaxUint32)
	if err != nil {
		return m, err
	}
	fields := metaFieldsV2 // the fields this decoder reads
	switch {
	case v < 1:
		return m, fmt.Errorf("%w: version %d", errBadMeta, v)
	case v == 1:
		fields = metaFieldsV1
		if n != metaFieldsV1 {
			return m, fmt.Errorf("%w: version %d with %d fields", errBadMeta, v, n)
		}
	case v == metaVersion && n != metaFieldsV2, v > metaVersion && n < metaFieldsV2:
		return m, fmt.Errorf("%w: version %d with %d fields", errBadMeta, v, n)
	}
	if m.ClientAddr, err = r.addr("client address"); err != nil {
		return m, err
	}
	if m.ControlAddr, err = r.addr("control address"); err != nil {
		return m, err
	}
	sessions, err := r.uint(maxSessions)
	if err != nil {
		return m, err
	}
	m.Sessions = int(sessions)
	if m.BytesPerSec, err = r.uint(math.MaxUint64); err != nil {
		return m, err
	}
	if m.Draining, err = r.bool(); err != nil {
		return m, err
	}
	if fields == metaFieldsV2 {
		if m.Boot, err = r.uint(math.MaxUint64); err != nil {
			return m, err
		}
	}
	for range n - fields {
		if err := r.skip(0); err != nil {
			return m, err
		}
	}
	if r.br.Len() != 0 {
		return m, fmt.Errorf("%w: %d trailing bytes", errBadMeta, r.br.Len())
	}
	return m, nil
}

// checkAddr accepts "" or a host:port of at most maxAddrLen bytes.
func checkAddr(what, a string) error {
	if a == "" {
		return nil
	}
	if len(a) > maxAddrLen {
		return fmt.Errorf("%w: %s longer than %d bytes", errBadMeta, what, maxAddrLen)
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("%w: %s: %v", errBadMeta, what, err)
	}
	return nil
}

// metaReader reads msgpack values strictly, never allocating more than
// what is left of its input.
type metaReader struct {
	br *bytes.Reader
	d  *msgpack.Decoder
}

func newMetaReader(b []byte) *metaReader {
	br := bytes.NewReader(b)
	// A bytes.Reader is an io.ByteScanner, so the decoder reads it
	// directly, with no buffer of its own: br.Len() is what is left.
	return &metaReader{br: br, d: msgpack.NewDecoder(br)}
}

func (r *metaReader) peek() (byte, error) {
	c, err := r.d.PeekCode()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBadMeta, err)
	}
	return c, nil
}

func (r *metaReader) arrayLen() (int, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if !msgpcode.IsFixedArray(c) && c != msgpcode.Array16 && c != msgpcode.Array32 {
		return 0, fmt.Errorf("%w: code %#x where an array belongs", errBadMeta, c)
	}
	n, err := r.d.DecodeArrayLen()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBadMeta, err)
	}
	if n > r.br.Len() {
		return 0, fmt.Errorf("%w: array of %d in %d bytes", errBadMeta, n, r.br.Len())
	}
	return n, nil
}

// uint reads a non-negative integer no greater than max, in any of
// msgpack's integer encodings.
func (r *metaReader) uint(max uint64) (uint64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	var v uint64
	switch c {
	case msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64:
		v, err = r.d.DecodeUint64()
	case msgpcode.Int8, msgpcode.Int16, msgpcode.Int32, msgpcode.Int64:
		var s int64
		s, err = r.d.DecodeInt64()
		if err == nil && s < 0 {
			return 0, fmt.Errorf("%w: negative integer", errBadMeta)
		}
		v = uint64(s)
	default:
		if c >= msgpcode.NegFixedNumLow {
			return 0, fmt.Errorf("%w: negative integer", errBadMeta)
		}
		if c > msgpcode.PosFixedNumHigh {
			return 0, fmt.Errorf("%w: code %#x where an integer belongs", errBadMeta, c)
		}
		v, err = r.d.DecodeUint64()
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBadMeta, err)
	}
	if v > max {
		return 0, fmt.Errorf("%w: integer %d above %d", errBadMeta, v, max)
	}
	return v, nil
}

func (r *metaReader) bool() (bool, error) {
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	if c != msgpcode.True && c != msgpcode.False {
		return false, fmt.Errorf("%w: code %#x where a bool belongs", errBadMeta, c)
	}
	v, err := r.d.DecodeBool()
	if err != nil {
		return false, fmt.Errorf("%w: %v", errBadMeta, err)
	}
	return v, nil
}

// str reads a UTF-8 string of at most max bytes.
func (r *metaReader) str(max int) (string, error) {
	c, err := r.peek()
	if err != nil {
		return "", err
	}
	if !msgpcode.IsString(c) {
		return "", fmt.Errorf("%w: code %#x where a string belongs", errBadMeta, c)
	}
	n, err := r.d.DecodeBytesLen()
	if err != nil {
		return "", fmt.Errorf("%w: %v", errBadMeta, err)
	}
	if n > max || n > r.br.Len() {
		return "", fmt.Errorf("%w: string of %d bytes", errBadMeta, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.br, b); err != nil {
		return "", fmt.Errorf("%w: %v", errBadMeta, err)
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: string is not UTF-8", errBadMeta)
	}
	return string(b), nil
}

func (r *metaReader) addr(what string) (string, error) {
	a, err := r.str(maxAddrLen)
	if err != nil {
		return "", err
	}
	if err := checkAddr(what, a); err != nil {
		return "", err
	}
	return a, nil
}

// skip passes over one value of any type, checking every length against
// what is left of the input and nesting at most maxSkipDepth deep.
func (r *metaReader) skip(depth int) error {
	if depth > maxSkipDepth {
		return fmt.Errorf("%w: nested too deep", errBadMeta)
	}
	c, err := r.peek()
	if err != nil {
		return err
	}
	var n, each int
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err = r.d.DecodeArrayLen()
		each = 1
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err = r.d.DecodeMapLen()
		each = 2
	case msgpcode.IsString(c) || msgpcode.IsBin(c):
		n, err = r.d.DecodeBytesLen()
		if err == nil {
			return r.discard(n)
		}
	case msgpcode.IsExt(c):
		// Extension types are not part of any version of the format.
		return fmt.Errorf("%w: extension type", errBadMeta)
	default:
		// Scalars: msgpack's own Skip reads only fixed-size payloads.
		err = r.d.Skip()
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errBadMeta, err)
	}
	if n > r.br.Len() {
		return fmt.Errorf("%w: container of %d in %d bytes", errBadMeta, n, r.br.Len())
	}
	for range n * each {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

func (r *metaReader) discard(n int) error {
	if n < 0 || n > r.br.Len() {
		return fmt.Errorf("%w: %d bytes claimed, %d left", errBadMeta, n, r.br.Len())
	}
	_, err := r.br.Seek(int64(n), io.SeekCurrent)
	return err
}
