package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"testing"
)

// allocated returns the bytes allocated while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// allocSlack covers allocations besides the ones under test (buffers,
// errors, the runtime's own).
const allocSlack = 64 << 10

const fuzzMax = 4096

// FuzzReadFrame feeds arbitrary bytes to the frame reader. It must never
// panic nor allocate much more than the limit per frame, and whatever it
// accepts must re-seal to exactly the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	w, _ := framePipe(&buf, fuzzMax)
	for _, m := range [][]byte{{}, []byte("a"), appendRequest(nil, 10, "k", []byte{0xc0}), make([]byte, fuzzMax)} {
		_, _ = w.writeFrame(m)
		f.Add(append([]byte(nil), buf.Bytes()...))
	}
	f.Add(binary.BigEndian.AppendUint32(nil, fuzzMax+tagLen+1))
	f.Add(binary.BigEndian.AppendUint32(nil, 1<<32-1))
	f.Add([]byte{0, 0, 0, 16})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		src := bytes.NewReader(in)
		_, r := framePipe(new(bytes.Buffer), fuzzMax)
		r.r = src
		for {
			start := len(in) - src.Len()
			seq := r.recvSeq
			var pt []byte
			var err error
			if n := allocated(func() { pt, err = r.readFrame() }); n > fuzzMax+tagLen+allocSlack {
				t.Fatalf("reading one frame allocated %d bytes", n)
			}
			if err != nil {
				return
			}
			if len(pt) > fuzzMax {
				t.Fatalf("accepted %d bytes over a limit of %d", len(pt), fuzzMax)
			}
			var out bytes.Buffer
			again, _ := framePipe(&out, fuzzMax)
			again.sendSeq = seq
			if _, err := again.writeFrame(pt); err != nil {
				t.Fatal(err)
			}
			if end := len(in) - src.Len(); !bytes.Equal(out.Bytes(), in[start:end]) {
				t.Fatalf("re-sealing gives %x, read %x", out.Bytes(), in[start:end])
			}
		}
	})
}

// FuzzSealOpen checks that any message within the limit survives a frame.
func FuzzSealOpen(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add([]byte("checkpoint"), uint8(3))
	f.Fuzz(func(t *testing.T, msg []byte, skip uint8) {
		var buf bytes.Buffer
		w, r := framePipe(&buf, fuzzMax)
		w.sendSeq, r.recvSeq = uint64(skip), uint64(skip)
		sent, err := w.writeFrame(msg)
		if len(msg) > fuzzMax {
			if err == nil || sent || buf.Len() != 0 {
				t.Fatalf("sent %d bytes over the limit", len(msg))
			}
			return
		}
		if err != nil || !sent {
			t.Fatal(err)
		}
		got, err := r.readFrame()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("got %x, %v; want %x", got, err, msg)
		}
	})
}

// FuzzHello feeds arbitrary bytes to the hello decoder: no panic, bounded
// allocation, and an accepted hello re-encodes to the bytes it consumed.
func FuzzHello(f *testing.F) {
	f.Add(testHello(MinMessage))
	f.Add(appendHello(nil, &hello{Version: helloVersion, MaxMessage: 1 << 24, Name: "node-1"}))
	f.Add([]byte(helloMagic))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var (
			h   hello
			raw []byte
			err error
		)
		if n := allocated(func() { h, raw, err = readHello(bytes.NewReader(in)) }); n > allocSlack {
			t.Fatalf("reading a hello allocated %d bytes", n)
		}
		if err != nil {
			return
		}
		if h.MaxMessage < MinMessage || len(raw) > helloFixed+MaxNameLen {
			t.Fatalf("accepted %+v from %d bytes", h, len(raw))
		}
		if got := appendHello(nil, &h); !bytes.Equal(got, raw) || !bytes.Equal(raw, in[:len(raw)]) {
			t.Fatalf("hello re-encodes to %x, read %x", got, raw)
		}
	})
}

// scripted is a connection whose peer's bytes are fixed; writes vanish.
type scripted struct{ io.Reader }

func (scripted) Write(p []byte) (int, error) { return len(p), nil }

// FuzzServerHandshake plays arbitrary bytes as a client to the server side
// of the handshake, and FuzzClientHandshake as a server to the client side:
// no panic, bounded allocation, and never success without the key.
func FuzzServerHandshake(f *testing.F) {
	f.Add(append(testHello(MinMessage), make([]byte, macLen)...))
	f.Add(testHello(1 << 20))
	f.Add([]byte(helloMagic + "\x01"))
	f.Fuzz(fuzzHandshake(serverHandshake))
}

func FuzzClientHandshake(f *testing.F) {
	f.Add(append(testHello(MinMessage), make([]byte, macLen)...))
	f.Add([]byte(helloMagic + "\x02"))
	f.Fuzz(fuzzHandshake(clientHandshake))
}

// fuzzHandshake plays the input as the peer of one side of the handshake.
func fuzzHandshake(handshake func(io.ReadWriter, *bufio.Reader, *Config, []byte) (*handshakeResult, error)) func(*testing.T, []byte) {
	cfg := fuzzConfig()
	ak := authKey(cfg.Key)
	return func(t *testing.T, in []byte) {
		conn := scripted{bytes.NewReader(in)}
		var err error
		if n := allocated(func() { _, err = handshake(conn, bufio.NewReader(conn), cfg, ak) }); n > allocSlack {
			t.Fatalf("a handshake allocated %d bytes", n)
		}
		if err == nil {
			t.Fatal("handshake succeeded against a random proof")
		}
	}
}

func fuzzConfig() *Config {
	cfg, err := Config{NodeName: "fuzz", Key: testKey}.withDefaults()
	if err != nil {
		panic(err)
	}
	return &cfg
}

// decodeBounded decodes body as a handler or a caller would, failing t if
// that allocates more than in proportion to the body's length: a header
// claiming gigabytes must not size a buffer.
func decodeBounded(t *testing.T, body []byte) {
	var v any
	n := allocated(func() { _ = DecodeBody(body, &v) })
	if n > allocSlack+256*uint64(len(body)) {
		n = min(n, allocated(func() { _ = DecodeBody(body, &v) })) // once more, in case other goroutines allocated meanwhile
	}
	if n > allocSlack+256*uint64(len(body)) {
		t.Fatalf("decoding a body of %d bytes allocated %d bytes", len(body), n)
	}
}

// FuzzRequest: the request decoder never panics, what it accepts
// re-encodes to the same bytes, and decoding its body costs memory in
// proportion to its length.
func FuzzRequest(f *testing.F) {
	f.Add(appendRequest(nil, 1500, "fetch", []byte{0xc0}))
	f.Add(appendRequest(nil, 0, "k", nil))
	f.Add([]byte{msgRequest, 0, 0, 0, 0, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := parseRequest(in)
		if err != nil {
			return
		}
		decodeBounded(t, r.Body)
		if r.Kind == "" || len(r.Kind) > MaxKindLen {
			t.Fatalf("accepted kind %q", r.Kind)
		}
		if got := appendRequest(nil, r.TimeoutMS, r.Kind, r.Body); !bytes.Equal(got, in) {
			t.Fatalf("request re-encodes to %x, read %x", got, in)
		}
	})
}

// FuzzResponse: the response decoder never panics, what it accepts
// re-encodes to the same bytes, and decoding its body costs memory in
// proportion to its length.
func FuzzResponse(f *testing.F) {
	f.Add(appendResponse(nil, []byte{0x81, 0xa1, 'a', 1}))
	f.Add(appendErrorResponse(nil, &RemoteError{Code: "x", Message: "y"}, 1024))
	f.Add([]byte{msgError, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := parseResponse(in)
		if err != nil {
			return
		}
		var got []byte
		if r.Err != nil {
			if r.Err.Code == "" || len(r.Err.Code) > maxCodeLen || len(r.Err.Message) > maxErrorMessage {
				t.Fatalf("accepted %+v", r.Err)
			}
			got = appendErrorResponse(nil, r.Err, len(in))
		} else {
			decodeBounded(t, r.Body)
			got = appendResponse(nil, r.Body)
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("response re-encodes to %x, read %x", got, in)
		}
	})
}
