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

func TestMembersFitTheirBodyBound(t *testing.T) {
	var f Members
	for i := 0; i < MaxMembers+10; i++ {
		f.List = append(f.List, MemberInfo{Name: strings.Repeat("n", MaxNameLen), Addr: strings.Repeat("a", MaxAddrLen), Sessions: uint32(i)})
	}
	b := AppendFrame(nil, f)
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatalf("the header of a MEMBERS frame of %d long members: %v", len(f.List), err)
	}
	got, err := Decode(h, b[HeaderLen:])
	if err != nil {
		t.Fatalf("a MEMBERS frame of %d long members does not parse: %v", len(f.List), err)
	}
	list := got.(Members).List
	if len(list) == 0 || len(list) >= len(f.List) {
		t.Fatalf("%d members encoded of %d", len(list), len(f.List))
	}
	for i, m := range list {
		if m.Sessions != uint32(i) || m.Name != f.List[i].Name {
			t.Fatalf("member %d is %+v", i, m)
		}
	}
}
