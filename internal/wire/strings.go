package wire

import "unicode/utf8"

// Limits of the short strings carried in frames.
const (
	MaxNameLen = 64  // a pool member's name
	MaxAddrLen = 255 // a host:port address
)

// appendStr8 appends s with a one-byte length prefix, cut to max bytes
// (TruncateUTF8) if it is longer.
func appendStr8(b []byte, s string, max int) []byte {
	s = TruncateUTF8(s, max)
	return append(append(b, byte(len(s))), s...)
}

// TruncateUTF8 returns the longest prefix of s of at most max bytes that
// does not end inside a UTF-8 sequence: what the peer's parser, which
// refuses invalid UTF-8, accepts of a string that was valid.
func TruncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// parseStr8 reads a one-byte-length-prefixed UTF-8 string of at most max
// bytes from the front of b.
func parseStr8(b []byte, max int, what string) (string, []byte, error) {
	if len(b) < 1 {
		return "", nil, malformed("%s: missing length", what)
	}
	n := int(b[0])
	if n > max || len(b) < 1+n {
		return "", nil, malformed("%s: length %d (max %d, %d bytes left)", what, n, max, len(b)-1)
	}
	s := b[1 : 1+n]
	if !utf8.Valid(s) {
		return "", nil, malformed("%s: not UTF-8", what)
	}
	return string(s), b[1+n:], nil
}

// parseLastStr8 parses the str8 that ends the body of frame (field names
// it in errors): at most max bytes of UTF-8, with nothing after it.
func parseLastStr8(b []byte, max int, frame, field string) (string, error) {
	v, rest, err := parseStr8(b, max, frame+" "+field)
	if err != nil {
		return "", err
	}
	if len(rest) != 0 {
		return "", malformed("%s: %d trailing bytes", frame, len(rest))
	}
	return v, nil
}
