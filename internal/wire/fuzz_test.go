package wire

import (
	"bytes"
	"testing"
)

// FuzzFrames feeds arbitrary bytes to the frame reader. It must never panic,
// never read a body larger than the header's type allows, and whatever it
// accepts must re-encode to exactly the bytes it consumed.
func FuzzFrames(f *testing.F) {
	for _, fr := range sampleFrames() {
		f.Add(AppendFrame(nil, fr))
	}
	f.Add(Preface[:])
	f.Add([]byte{byte(TypeData), 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for r.Len() > 0 {
			start := len(in) - r.Len()
			fr, err := ReadFrame(r, nil)
			if err != nil {
				return
			}
			end := len(in) - r.Len()
			if got := AppendFrame(nil, fr); !bytes.Equal(got, in[start:end]) {
				t.Fatalf("re-encoding %v:\n got %x\nwant %x", fr.Type(), got, in[start:end])
			}
		}
	})
}

// FuzzHeader checks that an accepted header bounds the body length.
func FuzzHeader(f *testing.F) {
	f.Add([]byte{byte(TypeData), 0, 0, 0, 0, 0, 0, 9})
	f.Add([]byte{0x80, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ParseHeader(in)
		if err != nil {
			return
		}
		if h.Length > 8+MaxPayload {
			t.Fatalf("accepted %v with body %d", h.Type, h.Length)
		}
		if got := AppendHeader(nil, h); !bytes.Equal(got, in[:HeaderLen]) {
			t.Fatalf("header re-encodes to %x, want %x", got, in[:HeaderLen])
		}
	})
}
