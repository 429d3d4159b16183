package mtcphttp

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// netHTTPEnds returns where net/http's server ends each request of in that
// it would serve: it skips CR and LF after a POST as the server does, reads
// each request and its whole body, and stops at the first error.
func netHTTPEnds(in []byte) []int64 {
	r := bytes.NewReader(in)
	br := bufio.NewReader(r)
	consumed := func() int64 { return int64(len(in)) - int64(r.Len()) - int64(br.Buffered()) }
	var ends []int64
	post := false
	for {
		if post {
			for {
				b, err := br.Peek(1)
				if err != nil || (b[0] != '\r' && b[0] != '\n') {
					break
				}
				_, _ = br.Discard(1)
			}
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return ends
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return ends
		}
		if err := req.Body.Close(); err != nil {
			return ends
		}
		post = req.Method == http.MethodPost
		ends = append(ends, consumed())
	}
}

// framingEnds feeds in to a framing in pieces of size step (all at once
// if 0) and returns the request ends it found, and whether it gave up.
func framingEnds(in []byte, step int) ([]int64, bool) {
	f := newFraming()
	if step <= 0 {
		step = len(in) + 1
	}
	for p := in; len(p) > 0; {
		k := min(step, len(p))
		f.feed(p[:k])
		p = p[k:]
	}
	return f.ends, f.lost
}

var framingCases = map[string]string{
	"get":             "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"bare lf":         "GET / HTTP/1.1\nHost: a\n\n",
	"post":            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"post crlf":       "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"length case":     "PUT /x HTTP/1.1\r\nhost: a\r\ncontent-length:3\r\n\r\nabc",
	"same lengths":    "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"chunked":         "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
	"chunk trailer":   "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\na\r\n0123456789\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n",
	"chunk over 16":   "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1F \r\n" + strings.Repeat("z", 31) + "\r\n0\r\n\r\n",
	"http 1.0 te":     "POST /old HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\nbody",
	"get with body":   "GET /b HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody",
	"pipelined":       "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nPOST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
	"long field":      "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("v", 3000) + "\r\n\r\n",
	"unsupported te":  "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
	"bad length":      "POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
	"split length":    "POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	"h2 preface":      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"long url":        "GET /" + strings.Repeat("u", 1000) + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"incomplete body": "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhell",
}

// TestFramingAgreesWithNetHTTP: wherever net/http serves a request, the
// framing finds the same end, or gives up; fed in any pieces.
func TestFramingAgreesWithNetHTTP(t *testing.T) {
	for name, in := range framingCases {
		t.Run(name, func(t *testing.T) {
			want := netHTTPEnds([]byte(in))
			for _, step := range []int{0, 1, 2, 3, 7, 64} {
				got, lost := framingEnds([]byte(in), step)
				checkEnds(t, want, got, lost)
			}
		})
	}
}

// checkEnds requires the framing's ends to be net/http's, up to where it
// gave up (a framing that gives up checkpoints no more: it is safe).
func checkEnds(t *testing.T, want, got []int64, lost bool) {
	t.Helper()
	if !lost {
		require.GreaterOrEqual(t, len(got), len(want), "requests net/http serves, framing found")
	}
	n := min(len(want), len(got))
	require.Equal(t, append([]int64{}, want[:n]...), append([]int64{}, got[:n]...))
}

// TestFramingFollowsCommonRequests: the framing does not give up on the
// requests clients send.
func TestFramingFollowsCommonRequests(t *testing.T) {
	for _, name := range []string{"get", "bare lf", "post", "post crlf", "length case", "same lengths", "chunked",
		"chunk trailer", "chunk over 16", "http 1.0 te", "get with body", "pipelined", "long field"} {
		got, lost := framingEnds([]byte(framingCases[name]), 0)
		require.False(t, lost, name)
		require.Equal(t, netHTTPEnds([]byte(framingCases[name])), got, name)
		require.NotEmpty(t, got, name)
	}
	for _, name := range []string{"unsupported te", "bad length", "split length", "h2 preface"} {
		_, lost := framingEnds([]byte(framingCases[name]), 0)
		require.True(t, lost, "%s: not followed", name)
	}
}

// TestFramingServed: a served request is a boundary only when nothing of
// the next one was read.
func TestFramingServed(t *testing.T) {
	f := newFraming()
	f.feed([]byte(framingCases["get"]))
	require.True(t, f.served(), "the request read, nothing more")
	f.feed([]byte(framingCases["get"] + "G"))
	require.False(t, f.served(), "a byte of the next request was read")
	f.feed([]byte("ET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	require.True(t, f.served())
	require.False(t, f.served(), "a request served that was never read")
	require.True(t, f.lost)
}

// FuzzFraming checks the framing against net/http's own reading of the
// same bytes.
func FuzzFraming(f *testing.F) {
	for _, in := range framingCases {
		f.Add([]byte(in), uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		want := netHTTPEnds(in)
		got, lost := framingEnds(in, int(step))
		n := min(len(want), len(got))
		if !lost && len(got) < len(want) {
			t.Fatalf("framing found %d requests, net/http serves %d: %q", len(got), len(want), in)
		}
		for i := 0; i < n; i++ {
			if got[i] != want[i] {
				t.Fatalf("request %d ends at %d, net/http says %d: %q", i, got[i], want[i], in)
			}
		}
	})
}
