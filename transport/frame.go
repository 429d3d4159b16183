package transport

import (
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// Frame layout (doc.go, "Frames").
const (
	lenPrefix = 4
	tagLen    = 16 // AES-GCM tag
	// maxFrames bounds the frames sent or received on one connection per
	// direction, far below the 2^64 nonces a key has.
	maxFrames = 1 << 48
)

// secureConn carries sealed frames over an authenticated connection. Reads
// must come from one goroutine at a time; writes may be concurrent.
type secureConn struct {
	r io.Reader // buffered reader of the connection

	recv    cipher.AEAD
	recvSeq uint64
	maxRecv int // largest plaintext accepted
	// busy, on a client, is the MAC that follows a zero length in place of
	// the server's first frame when the server turned the connection away
	// (doc.go, "Handshake").
	busy *[macLen]byte

	wmu     sync.Mutex
	w       io.Writer
	send    cipher.AEAD
	sendSeq uint64
	maxSend int // largest plaintext the peer accepts (and this end sends)
}

func newSecureConn(w io.Writer, r io.Reader, send, recv cipher.AEAD, maxSend, maxRecv int) *secureConn {
	return &secureConn{r: r, w: w, send: send, recv: recv, maxSend: maxSend, maxRecv: maxRecv}
}

// frameNonce is the GCM nonce of frame seq: four zero bytes, then seq big-endian.
func frameNonce(seq uint64) [12]byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], seq)
	return n
}

// readFrame reads and opens the next frame and returns its plaintext. It
// checks the length against maxRecv before allocating anything for the
// body. Any error leaves the connection unusable.
func (c *secureConn) readFrame() ([]byte, error) {
	var hdr [lenPrefix]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 && c.busy != nil && c.recvSeq == 0 {
		return nil, c.readBusy()
	}
	if n < tagLen {
		return nil, protocolError("frame of %d bytes is shorter than its tag", n)
	}
	if uint64(n) > uint64(c.maxRecv)+tagLen {
		return nil, fmt.Errorf("%w: %w: peer sent a frame of %d bytes, this end accepts %d",
			ErrProtocol, ErrTooLarge, n-tagLen, c.maxRecv)
	}
	if c.recvSeq >= maxFrames {
		return nil, protocolError("too many frames on one connection")
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	nonce := frameNonce(c.recvSeq)
	pt, err := c.recv.Open(buf[:0], nonce[:], buf, hdr[:])
	if err != nil {
		return nil, protocolError("frame %d failed authentication", c.recvSeq)
	}
	c.recvSeq++
	return pt, nil
}

// readBusy reads and checks the MAC of a busy answer.
func (c *secureConn) readBusy() error {
	var m [macLen]byte
	if _, err := io.ReadFull(c.r, m[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading a busy answer: %w", err)
	}
	if !hmac.Equal(m[:], c.busy[:]) {
		return protocolError("busy answer failed authentication")
	}
	return fmt.Errorf("%w: the server turned the connection away before reading the request", ErrBusy)
}

// writeFrame seals pt into one frame and writes it. sent reports whether
// the whole frame was written; a frame not written whole never reaches the
// peer's handler (it cannot be opened). Any error leaves the connection
// unusable.
func (c *secureConn) writeFrame(pt []byte) (sent bool, err error) {
	if len(pt) > c.maxSend {
		return false, fmt.Errorf("%w: message of %d bytes, the limit is %d", ErrTooLarge, len(pt), c.maxSend)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sendSeq >= maxFrames {
		return false, protocolError("too many frames on one connection")
	}
	buf := make([]byte, lenPrefix, lenPrefix+len(pt)+tagLen)
	binary.BigEndian.PutUint32(buf, uint32(len(pt)+tagLen))
	nonce := frameNonce(c.sendSeq)
	buf = c.send.Seal(buf, nonce[:], pt, buf[:lenPrefix])
	c.sendSeq++
	n, err := c.w.Write(buf)
	return n == len(buf), err
}
