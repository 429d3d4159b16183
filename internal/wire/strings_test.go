package wire

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLongNamesAreCutOnCharacterBoundaries(t *testing.T) {
	name := strings.Repeat("é", MaxNameLen) // 2 bytes each: the cut falls inside one
	b := appendStr8(nil, name, MaxNameLen)
	got, rest, err := parseStr8(b, MaxNameLen, "name")
	if err != nil {
		t.Fatalf("a cut name does not parse: %v", err)
	}
	if len(rest) != 0 || !utf8.ValidString(got) || len(got) > MaxNameLen || !strings.HasPrefix(name, got) || len(got) < MaxNameLen-3 {
		t.Fatalf("cut to %q (%d bytes), rest %d", got, len(got), len(rest))
	}
	for _, s := range []string{"", "abc", strings.Repeat("a", 70), "日本語", strings.Repeat("日", 30)} {
		for max := 0; max <= 70; max++ {
			c := TruncateUTF8(s, max)
			if len(c) > max || !utf8.ValidString(c) || !strings.HasPrefix(s, c) || (len(s) <= max && c != s) {
				t.Fatalf("TruncateUTF8(%q, %d) = %q", s, max, c)
			}
		}
	}
}
