package mtcphttp

import (
	"bytes"
	"strconv"
)

// framing follows the HTTP/1.x requests in the bytes a server read from a
// connection, and notes where each request ends: its head (the request
// line and header fields, up to the empty line), then its body, framed as
// net/http frames a request's body: chunked when an HTTP/1.1 request says
// "Transfer-Encoding: chunked" (with its trailer), else Content-Length
// bytes, else none. When the server has served its k-th request, the
// connection sits between requests, with nothing read ahead, exactly when
// the bytes read so far end where the k-th request ends.
//
// It needs to agree with net/http only on requests net/http accepts and
// keeps the connection open after: on anything it does not follow (an
// unsupported transfer coding, a malformed length, an HTTP/2 preface, a
// length line too long to keep), it gives up, and the connection is no
// longer checkpointed.
type framing struct {
	state   frameState
	pos     int64   // bytes seen
	ends    []int64 // ends of the complete requests not served yet, oldest first
	lost    bool    // the bytes are not understood: no checkpoint any more
	http2   bool    // the connection speaks HTTP/2 (its preface was seen)
	line    [maxLine]byte
	lineLen int  // bytes of the current line kept in line
	long    bool // the current line is longer than line
	// The request whose head is being read.
	first   bool  // the next line is the request line
	legacy  bool  // HTTP/1.0 or older: Transfer-Encoding is ignored
	length  int64 // its Content-Length (-1: none)
	chunked bool
	remain  int64 // body or chunk bytes still to come
	crlf    int   // bytes of a chunk's closing CRLF still to come
}

type frameState uint8

const (
	frameStart     frameState = iota // before a request line (CR and LF are skipped)
	frameHead                        // in the head
	frameBody                        // in a Content-Length body
	frameChunkLine                   // in a chunk's size line
	frameChunkData                   // in a chunk's data, or its closing CRLF
	frameTrailer                     // in the trailer after the last chunk
)

const (
	// maxLine is how much of a line is kept: enough for the request line's
	// version and the length fields; longer lines are followed, not kept.
	maxLine = 256
	// maxPending bounds the requests read and not served yet.
	maxPending = 1024
)

func newFraming() *framing { return &framing{} }

// feed follows p, the next bytes the server read.
func (f *framing) feed(p []byte) {
	for len(p) > 0 && !f.lost {
		switch f.state {
		case frameStart:
			if p[0] == '\r' || p[0] == '\n' {
				f.advance(&p, 1)
				continue
			}
			f.state, f.first, f.legacy, f.length, f.chunked = frameHead, true, false, -1, false
		case frameBody:
			k := min(f.remain, int64(len(p)))
			f.remain -= k
			f.advance(&p, int(k))
			if f.remain == 0 {
				f.requestEnd()
			}
		case frameChunkData:
			if f.remain > 0 {
				k := min(f.remain, int64(len(p)))
				f.remain -= k
				f.advance(&p, int(k))
				continue
			}
			k := min(f.crlf, len(p)) // net/http checks these are CRLF
			f.crlf -= k
			f.advance(&p, k)
			if f.crlf == 0 {
				f.state = frameChunkLine
			}
		default: // a line: the head's, a chunk size, the trailer's
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				f.keep(p)
				f.advance(&p, len(p))
				continue
			}
			f.keep(p[:i])
			f.advance(&p, i+1)
			f.endLine()
		}
	}
}

func (f *framing) advance(p *[]byte, n int) {
	f.pos += int64(n)
	*p = (*p)[n:]
}

// keep adds b to the current line.
func (f *framing) keep(b []byte) {
	n := copy(f.line[f.lineLen:], b)
	f.lineLen += n
	if n < len(b) {
		f.long = true
	}
}

// endLine handles a complete line (without its LF); of a long line, only
// its start is known.
func (f *framing) endLine() {
	line := f.line[:f.lineLen]
	long := f.long
	f.lineLen, f.long = 0, false
	if !long {
		line = bytes.TrimSuffix(line, []byte{'\r'})
	}
	switch f.state {
	case frameHead:
		switch {
		case f.first:
			f.first = false
			f.requestLine(line, long)
		case len(line) == 0 && !long:
			f.headEnd()
		default:
			f.field(line, long)
		}
	case frameChunkLine:
		f.chunkSize(line, long)
	case frameTrailer:
		if len(line) == 0 && !long {
			f.requestEnd()
		}
	}
}

// requestLine notes the request's version. An HTTP/2 connection preface
// ("PRI * HTTP/2.0") ends the following: its frames are not requests.
func (f *framing) requestLine(line []byte, long bool) {
	if bytes.HasPrefix(line, []byte("PRI * HTTP/2.0")) {
		f.http2, f.lost = true, true
		return
	}
	if long {
		// A long request line (a long URL): its version is at its end.
		f.lost = true
		return
	}
	i := bytes.LastIndexByte(line, ' ')
	if i < 0 {
		f.lost = true
		return
	}
	major, minor, ok := parseVersion(line[i+1:])
	if !ok {
		f.lost = true
		return
	}
	f.legacy = major < 1 || (major == 1 && minor < 1)
}

// parseVersion parses "HTTP/x.y".
func parseVersion(v []byte) (major, minor int, ok bool) {
	rest, ok := bytes.CutPrefix(v, []byte("HTTP/"))
	if !ok {
		return 0, 0, false
	}
	a, b, ok := bytes.Cut(rest, []byte{'.'})
	if !ok {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(string(a))
	minor, err2 := strconv.Atoi(string(b))
	return major, minor, err1 == nil && err2 == nil
}

// field notes a header field that frames the body.
func (f *framing) field(line []byte, long bool) {
	name, value, ok := bytes.Cut(line, []byte{':'})
	framingField := bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("Transfer-Encoding"))
	switch {
	case long && (!ok || framingField):
		// Only the start was kept: its name, or a framing field's value,
		// is not known.
		f.lost = true
	case !ok || !framingField:
	case bytes.EqualFold(name, []byte("Content-Length")):
		n, err := strconv.ParseUint(string(bytes.Trim(value, " \t")), 10, 63)
		if err != nil || (f.length >= 0 && int64(n) != f.length) {
			f.lost = true // net/http refuses the request and closes
			return
		}
		f.length = int64(n)
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		if f.legacy {
			return // net/http ignores it on HTTP/1.0
		}
		if f.chunked || !bytes.EqualFold(bytes.Trim(value, " \t"), []byte("chunked")) {
			f.lost = true // net/http refuses the request and closes
			return
		}
		f.chunked = true
	}
}

// headEnd starts the body.
func (f *framing) headEnd() {
	switch {
	case f.chunked:
		f.state = frameChunkLine
	case f.length > 0:
		f.state, f.remain = frameBody, f.length
	default:
		f.requestEnd()
	}
}

// chunkSize reads a chunk's size line: hexadecimal digits, then optional
// white space and extensions.
func (f *framing) chunkSize(line []byte, long bool) {
	if long {
		f.lost = true
		return
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	n, err := strconv.ParseUint(string(bytes.TrimRight(line, " \t")), 16, 63)
	if err != nil || len(line) == 0 {
		f.lost = true
		return
	}
	if n == 0 {
		f.state = frameTrailer
		return
	}
	f.state, f.remain, f.crlf = frameChunkData, int64(n), 2
}

// requestEnd notes that a request ended at the current position.
func (f *framing) requestEnd() {
	f.state = frameStart
	if len(f.ends) >= maxPending {
		f.lost = true
		return
	}
	f.ends = append(f.ends, f.pos)
}

// served reports whether the next request to be served ends exactly where
// the bytes read end (nothing of a later request was read), and forgets it.
func (f *framing) served() bool {
	if f.lost || len(f.ends) == 0 {
		f.lost = true // a request served that was not seen whole
		return false
	}
	end := f.ends[0]
	f.ends = f.ends[:copy(f.ends, f.ends[1:])]
	return end == f.pos
}
