package mtcp

import (
	"bufio"
	"net"
	"sync"
)

// handshakeReadSize is the buffer of a link's reader during its handshake:
// its frames are small, and what it reads ahead is handed to the link.
const handshakeReadSize = 4 << 10

// handshakeReaders are the readers of links in their handshake: a link
// gives its reader back once attached, so that opening a session leaves no
// buffer behind for the collector to free.
var handshakeReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, handshakeReadSize) }}

func newHandshakeReader(nc net.Conn) *bufio.Reader {
	br := handshakeReaders.Get().(*bufio.Reader)
	br.Reset(nc)
	return br
}

// releaseHandshakeReader gives back a handshake's reader whose bytes read
// ahead were taken.
func releaseHandshakeReader(br *bufio.Reader) {
	if br.Size() != handshakeReadSize {
		return
	}
	br.Reset(nil)
	handshakeReaders.Put(br)
}
