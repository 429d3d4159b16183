// Package transport is the control plane between the members of an mtcp
// pool: an authenticated, encrypted request/response RPC over TCP that
// carries session handovers, checkpoint replication and fetches.
//
// A Server answers requests with one Handler per kind; a Client calls a
// member by address, reusing a few idle authenticated connections per
// address. Bodies are msgpack (github.com/vmihailenco/msgpack/v5). Every
// connection is authenticated with the pool key shared by all members and
// encrypted with keys fresh to that connection.
//
// # Handshake
//
// All integers are big-endian. The dialing side (client) and the accepting
// side (server) each send one hello:
//
//	hello = magic "mtcp-ctl" (8 bytes)
//	        version (1 byte, = 1)
//	        nonce (32 random bytes, fresh per connection)
//	        pub (32 bytes: an X25519 public key, the client's fresh per
//	             connection, the server's fresh at least every 50 ms)
//	        max (u32: the largest message plaintext this side accepts, >= 1024)
//	        nameLen (1 byte) name (nameLen bytes of UTF-8: the NodeName)
//
// and the exchange is
//
//	client -> server   CH = hello
//	server -> client   SH = hello, then serverProof (32 bytes)
//	client -> server   clientProof (32 bytes)
//
// with, for K the pool key (at least 16 bytes) and T = CH || SH (the exact
// bytes sent, without the proof):
//
//	authKey     = HKDF-SHA256(secret K, salt empty, info "mtcp transport v1 auth", 32 bytes)
//	serverProof = HMAC-SHA256(authKey, "mtcp transport v1 server proof" || T)
//	clientProof = HMAC-SHA256(authKey, "mtcp transport v1 client proof" || T)
//
// Each side compares the proof it receives with the one it computes using
// hmac.Equal (constant time) and aborts with ErrAuth on a mismatch: the
// client before it sends its own proof (so a wrong key on either side is
// seen by the client first), the server before it reads any request.
// Since each proof covers the other side's fresh nonce, a recorded
// handshake is useless against a later one; the distinct labels keep one
// side's proof from being reflected as the other's. A hello with another
// magic, version or a max below 1024 ends the handshake (ErrProtocol,
// ErrVersion); there is no negotiation. The whole handshake must finish
// within HandshakeTimeout.
//
// A server may end a handshake early to make room (see "Bounded cost").
// If it had sent its hello and proof by then, it first sends, in place of
// its first frame,
//
//	busy = 4 zero bytes (a frame length no frame has)
//	       HMAC-SHA256(authKey, "mtcp transport v1 busy" || T)
//
// meaning that whatever the client sent after its proof was not read. It
// does the same when the client's proof is good but MaxConns
// authenticated connections are being served. A client that reads busy, its
// MAC checked, in place of the first response sends the request again on
// a new connection. Only a holder of the pool key can compute the MAC, so
// no one else can make a client send a request twice; and it costs the
// server an HMAC, not a key exchange.
//
// # Traffic keys
//
// With Z = X25519(own private key, peer's pub) (an all-zero Z is refused):
//
//	ikm  = K || Z
//	salt = SHA-256(T)
//	c2s  = HKDF-SHA256(ikm, salt, info "mtcp transport v1 client to server", 32 bytes)
//	s2c  = HKDF-SHA256(ikm, salt, info "mtcp transport v1 server to client", 32 bytes)
//
// c2s keys AES-256-GCM for the frames the client sends, s2c for the
// server's. The pool key authenticates; the ephemeral X25519 exchange gives
// forward secrecy: a pool key leaked later does not open recorded traffic.
// A server uses one X25519 key for the hellos of up to 50 ms, so that a
// flood of hellos costs it at most 20 key generations a second; the
// connections that share it still get keys of their own (their nonces and
// the clients' keys differ), and it is let go 50 ms after it was made.
//
// # Frames
//
// After the handshake each direction is a sequence of frames:
//
//	frame = length (u32: the ciphertext length, tag included)
//	        ciphertext = AES-256-GCM-Seal(key of the direction,
//	                       nonce = 4 zero bytes || u64 frame counter,
//	                       plaintext = message, additional data = the 4 length bytes)
//
// The frame counter of each direction starts at 0 and counts frames (a
// connection ends after 2^48 of them). A receiver checks
// 16 <= length <= its max + 16 before it allocates the body; a frame
// longer than that, or one that fails to open (tampered, replayed,
// reordered, or under another key), ends the connection.
//
// # Messages
//
// A frame's plaintext is one message, by its first byte:
//
//	request  = 0x01, timeout (u32: milliseconds the caller still waits,
//	           rounded up; 0: unsaid), kindLen (1 byte, >= 1), kind, body (msgpack)
//	response = 0x02, body (msgpack)
//	error    = 0x03, codeLen (1 byte, >= 1), code, message (text, at most 8 KiB)
//
// This package specifies the envelope only. The kinds a pool's members
// send, their msgpack bodies and their error codes are listed in
// pool/catalogue.go and specified in section 11 of spec.md at the
// repository root.
//
// The server runs the handler of kind with a context whose deadline is
// timeout after the request arrived. The codes the server itself uses are
// "unknown_kind" (no handler), "bad_request" (the body does not decode),
// "too_large", "internal" (a panic, an unencodable response),
// "deadline_exceeded" and "canceled" (the handler failed with a context
// error), and "error" (a handler error that names no code).
//
// A client sends one request at a time on a connection and waits for its
// response or error; a request sent before the previous one is answered is a
// protocol error. A sender never sends a message larger than the smaller of
// its own max and the peer's (a request fails locally with ErrTooLarge; a
// response becomes an error with code "too_large").
//
// # Timeouts, pooling and retries
//
// A Call's deadline is its context's, or CallTimeout from now; the server
// runs the handler under the same deadline (sent in the request) and
// cancels it when the caller's connection closes. A call whose context
// ends closes its connection. A Server closes an inbound connection idle
// for IdleTimeout. A Client keeps up to MaxIdlePerAddr idle connections
// per address for IdleTimeout/2, and checks before reuse that the peer has
// not closed one. It has at most MaxConnsPerAddr calls under way to one
// address, each on its own connection: a call beyond them waits, within
// its deadline, for one to end and takes its connection. A connection that fails before the request is written
// whole is replaced and the request sent again; a request written whole
// is never resent, since its handler may have run, unless the server
// answered busy. A handshake the server cut short (the connection closed
// or reset) and a busy answer are retried on a new connection after a
// pause of 5 to 100 ms, growing, until the call's deadline.
//
// # Bounded cost
//
// A Server budgets connections in their handshake and authenticated ones
// apart, so that anyone who reaches the port cannot keep members out:
//
//   - At most MaxHandshakes connections are in their handshake (not yet
//     past the client's proof). A connection that arrives when that many
//     are evicts the one in its handshake longest, which is closed at once
//     (answered busy first if it has the server's hello). Honest handshakes
//     take one round trip, so they get through a flood unless MaxHandshakes
//     newer connections arrive within it; a member cut off so retries.
//     Evicted connections finish at once, and the Server stops accepting
//     while 2×MaxHandshakes handshake goroutines exist.
//   - At most MaxConns authenticated connections are served. They never
//     count against MaxHandshakes and are never evicted; one that
//     authenticates while MaxConns are served is answered busy and closed.
//   - A handshake ends HandshakeTimeout after its accept, whatever trickles
//     in; under a flood, sooner.
//
// So an unauthenticated peer costs the server, per connection: a slot
// among MaxHandshakes for at most HandshakeTimeout, a goroutine (a few KiB
// of stack), a 4 KiB read buffer, at most 333 bytes of hello and its
// socket: under 16 KiB in all, and at the defaults at most 512 connections
// at once, 8 MiB. Nothing is read before the proof but fixed-size fields
// and the one-byte name length: there is no length to inflate, and
// garbage fails at the magic (its first 9 bytes). In CPU, a whole hello
// costs an HMAC (two with a proof, three if it is answered busy), and the
// X25519 key generations of all hellos together are at most 20 a second
// ("Traffic keys"); only a good proof costs an X25519 exchange. Warnings
// about failed handshakes, evictions and refusals are logged at most once
// per second each, the rest at debug level. Nothing outlives a connection,
// so a reconnect storm costs only these, once per connection. What the
// Server cannot bound is its accept queue, which the kernel serves in
// order: a storm that arrives faster than the Server accepts and evicts
// delays members too. Only filtering in front of the port prevents that.
//
// After the handshake, a peer holds the pool key. It cannot make the
// server allocate more than max + 16 bytes per frame, nor run more than
// one handler per connection at a time. A body is decoded only if it is
// one msgpack value whose every declared length fits in the bytes that
// follow (internal/msgpackcheck), so decoding costs memory in proportion
// to the body, whatever its headers claim. An authenticated connection idle for
// IdleTimeout is closed.
package transport
