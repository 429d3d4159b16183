package transport

import (
	"bufio"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"fmt"
	"io"
)

// handshakeResult is an authenticated connection's state.
type handshakeResult struct {
	sec      *secureConn
	peerName string
}

// newHello returns this side's hello and its ephemeral X25519 key, from
// keys, or fresh if keys is nil.
func newHello(cfg *Config, keys *ephemeralKeys) (*hello, *ecdh.PrivateKey, error) {
	priv, err := keys.get()
	if err != nil {
		return nil, nil, err
	}
	h := &hello{Version: helloVersion, MaxMessage: uint32(cfg.MaxMessage), Name: cfg.NodeName}
	_, _ = rand.Read(h.Nonce[:]) // never fails (Go 1.24+)
	copy(h.Pub[:], priv.PublicKey().Bytes())
	return h, priv, nil
}

// clientHandshake runs the dialing side of the handshake on rw (reads go
// through br). The caller sets deadlines.
func clientHandshake(rw io.ReadWriter, br *bufio.Reader, cfg *Config, ak []byte) (*handshakeResult, error) {
	ch, priv, err := newHello(cfg, nil)
	if err != nil {
		return nil, err
	}
	transcript := appendHello(make([]byte, 0, 2*(helloFixed+MaxNameLen)), ch)
	if _, err := rw.Write(transcript); err != nil {
		return nil, fmt.Errorf("sending client hello: %w", err)
	}
	sh, shRaw, err := readHello(br)
	if err != nil {
		return nil, fmt.Errorf("server hello: %w", err)
	}
	got, err := readProof(br)
	if err != nil {
		return nil, fmt.Errorf("server proof: %w", err)
	}
	transcript = append(transcript, shRaw...)
	want := proof(ak, labelServer, transcript)
	if !hmac.Equal(got[:], want[:]) {
		return nil, fmt.Errorf("%w: server %q did not prove the pool key", ErrAuth, sh.Name)
	}
	mine := proof(ak, labelClient, transcript)
	if _, err := rw.Write(mine[:]); err != nil {
		return nil, fmt.Errorf("sending client proof: %w", err)
	}
	res, err := finish(rw, br, cfg, priv, &sh, transcript, false)
	if err != nil {
		return nil, err
	}
	busy := proof(ak, labelBusy, transcript)
	res.sec.busy = &busy
	return res, nil
}

// serverHandshake runs the accepting side of the handshake on rw (reads go
// through br). The caller sets deadlines.
func serverHandshake(rw io.ReadWriter, br *bufio.Reader, cfg *Config, ak []byte) (*handshakeResult, error) {
	sh, err := startServerHandshake(rw, br, cfg, ak, nil)
	if err != nil {
		return nil, err
	}
	if err := sh.verify(br); err != nil {
		return nil, err
	}
	return sh.finish(rw, br)
}

// serverHello is the accepting side of a handshake whose hello and proof
// are sent: what it needs to check the client's proof and to derive the
// traffic keys.
type serverHello struct {
	cfg        *Config
	ak         []byte
	priv       *ecdh.PrivateKey
	ch         hello
	transcript []byte
}

// startServerHandshake reads the client hello and sends the server's hello
// and proof, with an X25519 key from keys (fresh if nil). The caller sets
// deadlines.
func startServerHandshake(rw io.ReadWriter, br *bufio.Reader, cfg *Config, ak []byte, keys *ephemeralKeys) (*serverHello, error) {
	ch, transcript, err := readHello(br)
	if err != nil {
		return nil, fmt.Errorf("client hello: %w", err)
	}
	sh, priv, err := newHello(cfg, keys)
	if err != nil {
		return nil, err
	}
	shStart := len(transcript)
	transcript = appendHello(transcript, sh)
	mine := proof(ak, labelServer, transcript)
	out := append(transcript[shStart:len(transcript):len(transcript)], mine[:]...)
	if _, err := rw.Write(out); err != nil {
		return nil, fmt.Errorf("sending server hello: %w", err)
	}
	return &serverHello{cfg: cfg, ak: ak, priv: priv, ch: ch, transcript: transcript}, nil
}

// busy returns the busy answer: a zero frame length, which no frame has,
// and a MAC over the transcript that only a holder of the pool key can
// compute or check.
func (sh *serverHello) busy() []byte {
	mac := proof(sh.ak, labelBusy, sh.transcript)
	return append(make([]byte, lenPrefix, lenPrefix+macLen), mac[:]...)
}

// verify reads the client's proof and checks it.
func (sh *serverHello) verify(br *bufio.Reader) error {
	got, err := readProof(br)
	if err != nil {
		return fmt.Errorf("client proof: %w", err)
	}
	want := proof(sh.ak, labelClient, sh.transcript)
	if !hmac.Equal(got[:], want[:]) {
		return fmt.Errorf("%w: client %q did not prove the pool key", ErrAuth, sh.ch.Name)
	}
	return nil
}

// finish derives the traffic keys, once verify succeeded.
func (sh *serverHello) finish(rw io.ReadWriter, br *bufio.Reader) (*handshakeResult, error) {
	return finish(rw, br, sh.cfg, sh.priv, &sh.ch, sh.transcript, true)
}

// finish derives the traffic keys once both proofs are checked.
func finish(rw io.ReadWriter, br *bufio.Reader, cfg *Config, priv *ecdh.PrivateKey,
	peer *hello, transcript []byte, server bool) (*handshakeResult, error) {
	shared, err := sharedSecret(priv, peer.Pub)
	if err != nil {
		return nil, err
	}
	c2s, s2c, err := trafficKeys(cfg.Key, shared, transcript)
	if err != nil {
		return nil, err
	}
	send, recv := c2s, s2c
	if server {
		send, recv = s2c, c2s
	}
	sec := newSecureConn(rw, br, send, recv, min(cfg.MaxMessage, int(peer.MaxMessage)), cfg.MaxMessage)
	return &handshakeResult{sec: sec, peerName: peer.Name}, nil
}
